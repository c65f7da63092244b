"""Sparse autoencoders on vectors: top-k and batch top-k, JumpReLU's and the step's
straight-through gradients, unit-norm dictionaries (free for ReLU, whose L1 weighs each
latent by its direction's norm), the encoder's and pre-bias's starts, the gated forward and
its frozen-decoder term, AuxK and dead-latent counting, batchtopk's assigned threshold and the
batch statistics, each against hand-worked numbers; and each shipped variant learning real
digits through `aejax.fit`."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import aejax
from aejax import configs
from aejax.data import sources
from aejax.evaluation import figures
from aejax.models import factory, sae
from aejax.objectives import autoencoding
from aejax.training.optimizers import make_optimizer

# Four unit directions in 3-D, and an encoder that reads them: latent i's pre-activation is
# x . d_i. For X below: h = (3, 1, 0, 2.6) and (0, 0, 2, 0).
DIRECTIONS = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [0.6, 0.8, 0]], np.float32)
X = jnp.array([[3.0, 1.0, 0.0], [0.0, 0.0, 2.0]])


def model_of(activation, input_dim=3, latents=4, **fields):
    return sae.SparseAutoencoder(input_dim, latents, activation, **fields)


def hand_params(decoder=DIRECTIONS, encoder=None, pre_bias=None, **extra):
    """Parameters set by hand: the encoder the decoder's transpose unless given, no biases."""
    decoder = jnp.asarray(decoder, jnp.float32)
    return {
        "pre_bias": jnp.zeros(decoder.shape[1]) if pre_bias is None else jnp.asarray(pre_bias),
        "decoder_kernel": decoder,
        "encoder_kernel": decoder.T if encoder is None else jnp.asarray(encoder, jnp.float32),
        "encoder_bias": jnp.zeros(decoder.shape[0]),
        **{name: jnp.asarray(value, jnp.float32) for name, value in extra.items()},
    }


# --- top-k and batch top-k ------------------------------------------------------------------------


def test_top_k_keeps_each_rows_k_largest_and_zeroes_negatives_among_them():
    """k = 2: row 1 keeps 3 and 2; row 2's two largest are 1 and -1, the -1 kept as 0. Scattered
    back, the rest of each row is 0."""
    h = jnp.array([[3.0, -1.0, 2.0, 0.5], [-2.0, -1.0, -3.0, 1.0]])
    values, indices = sae.top_k(h, 2)
    np.testing.assert_array_equal(values, [[3, 2], [1, 0]])
    np.testing.assert_array_equal(indices, [[0, 2], [3, 1]])
    np.testing.assert_array_equal(sae.scatter(values, indices, 4), [[3, 0, 2, 0], [0, 0, 0, 1]])


def test_encode_top_k_has_autodiffs_gradient_through_a_scatter_of_the_kept_rows():
    """Against autodiff of the plain composition, on a batch with ties broken alike."""
    kx, kw, kb, kg = jax.random.split(jax.random.key(3), 4)
    x, w, b = jax.random.normal(kx, (5, 6)), jax.random.normal(kw, (6, 9)), jax.random.normal(kb, (9,))
    weights = jax.random.normal(kg, (5, 3))

    def loss(encode, x, w, b):
        values, _ = encode(x, w, b)
        return jnp.sum(weights * jnp.sin(values))

    plain = lambda x, w, b: jax.lax.top_k(x @ w + b, 3)
    ours = lambda x, w, b: sae.encode_top_k(x, w, b, 3)
    np.testing.assert_array_equal(ours(x, w, b)[1], plain(x, w, b)[1])
    expected = jax.grad(lambda *a: loss(plain, *a), argnums=(0, 1, 2))(x, w, b)
    got = jax.grad(lambda *a: loss(ours, *a), argnums=(0, 1, 2))(x, w, b)
    for name, e, g in zip(("x", "kernel", "bias"), expected, got):
        np.testing.assert_allclose(g, e, rtol=1e-5, atol=1e-6, err_msg=name)
    assert np.count_nonzero(np.any(got[1] != 0, axis=0)) <= 5 * 3  # only the kept columns


def test_sparse_decode_sums_the_chosen_directions():
    """(3, 0) at latents (1, 4) and (2, 0.5) at (3, 4): 3 d1 = (3, 0, 0) and 2 d3 + 0.5 d4 =
    (0.3, 0.4, 2), the same as the dense latents times the dictionary."""
    values, indices = jnp.array([[3.0, 0.0], [2.0, 0.5]]), jnp.array([[0, 3], [2, 3]])
    decoded = sae.sparse_decode(values, indices, jnp.asarray(DIRECTIONS))
    np.testing.assert_allclose(decoded, [[3, 0, 0], [0.3, 0.4, 2]], rtol=1e-6)
    np.testing.assert_allclose(decoded, sae.scatter(values, indices, 4) @ DIRECTIONS, rtol=1e-6)


def test_batch_top_k_keeps_the_batchs_k_times_b_largest_and_reports_the_smallest_kept():
    """k = 2, B = 2: the four largest of the whole batch, however they fall over the rows (3,
    2, 0.5 in row 1, only 1 in row 2); the smallest positive kept, 0.5, is what the inference
    threshold averages. Negatives among the four are kept as 0 and are not the smallest; with
    none positive the smallest is 0."""
    kept, smallest = sae.batch_top_k(jnp.array([[3.0, -1.0, 2.0, 0.5], [-2.0, -1.0, -3.0, 1.0]]), 2)
    np.testing.assert_array_equal(kept, [[3, 0, 2, 0.5], [0, 0, 0, 1]])
    assert smallest == 0.5
    h = jnp.array([[3.0, -1.0, -2.0, -4.0], [-3.0, -0.5, -5.0, 1.0]])
    kept, smallest = sae.batch_top_k(h, 2)
    np.testing.assert_array_equal(kept, [[3, 0, 0, 0], [0, 0, 0, 1]])  # 3, 1, -0.5, -1 kept
    assert smallest == 1.0
    _, smallest = sae.batch_top_k(-jnp.ones((2, 3)), 1)
    assert smallest == 0.0


# --- JumpReLU and the step: straight-through gradients ------------------------------------------

# Thresholds (0.5, 2) and bandwidth 0.01: the rectangle window is |h - theta| < 0.005. Latent
# 1's window holds rows 1 (above theta) and 2 (below); latent 2's only row 2 (below). Row 1's
# 2.5 and row 3's 0.1 and 2.01 lie outside.
THETA = jnp.array([0.5, 2.0])
EPS = 0.01
H = jnp.array([[0.503, 2.5], [0.498, 1.996], [0.1, 2.01]])
G = jnp.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])  # the cotangent pulled back


def test_jump_relu_passes_h_above_the_threshold_and_its_pseudo_derivatives():
    """dh = g (h > theta): (1, 2), (0, 0), (0, 6). dtheta = -(theta / eps) sum of g in the
    window: -(0.5 / 0.01)(1 + 3) = -200 and -(2 / 0.01) 4 = -800."""
    f, pullback = jax.vjp(lambda h, t: sae.jump_relu(h, t, EPS), H, THETA)
    np.testing.assert_allclose(f, [[0.503, 2.5], [0, 0], [0, 2.01]])
    dh, dtheta = pullback(G)
    np.testing.assert_array_equal(dh, [[1, 2], [0, 0], [0, 6]])
    np.testing.assert_allclose(dtheta, [-200.0, -800.0], rtol=1e-5)


def test_step_counts_h_above_the_threshold_and_only_the_threshold_learns():
    """The L0's step: no gradient to h; dtheta = -(1 / eps) sum of g in the window:
    -100 (1 + 3) = -400 and -100 4 = -400."""
    f, pullback = jax.vjp(lambda h, t: sae.step(h, t, EPS), H, THETA)
    np.testing.assert_array_equal(f, [[1, 1], [0, 0], [0, 1]])
    dh, dtheta = pullback(G)
    np.testing.assert_array_equal(dh, jnp.zeros_like(H))
    np.testing.assert_allclose(dtheta, [-400.0, -400.0], rtol=1e-5)


def test_jumprelu_model_counts_l0_and_its_log_threshold_gradient_goes_through_exp():
    """The model reads theta = exp(log_threshold): L0 = (2 + 0 + 1) / 3 = 1, and d L0 /
    d log theta = theta dtheta, with g = 1/3 (the batch mean): 0.5 (-100 2/3) and
    2 (-100 1/3)."""
    model = model_of("jumprelu", input_dim=2, latents=2, bandwidth=EPS)
    params = hand_params(np.eye(2), log_threshold=jnp.log(THETA))
    _, aux = model.apply({"params": params}, H)
    np.testing.assert_allclose(aux["code"], [[0.503, 2.5], [0, 0], [0, 2.01]])
    assert aux["terms"]["l0"] == 1.0

    def l0(p):
        return model.apply({"params": p}, H)[1]["terms"]["l0"]

    grads = jax.grad(l0)(params)
    np.testing.assert_allclose(grads["log_threshold"], [-100 / 3, -200 / 3], rtol=1e-5)
    np.testing.assert_array_equal(grads["encoder_kernel"], 0)  # the step passes nothing to h


# --- the dictionary: unit rows, and ReLU's free rows under a norm-weighted L1 -------------------

# Rows of norms 5, 2, 0.5, 3.
ROWS = np.array([[3, 4, 0], [0, 0, 2], [0.5, 0, 0], [1, 2, 2]], np.float32)
NORMS = np.array([5, 2, 0.5, 3], np.float32)


@pytest.mark.parametrize("activation", ["topk", "batchtopk", "jumprelu", "gated"])
def test_the_dictionary_has_unit_rows_whatever_the_decoder_kernel(activation):
    """W_dec = V / |V| row by row: no step can shrink a direction to cheat a penalty."""
    model = model_of(activation, k=2, aux_k=2)
    variables = model.init(jax.random.key(0), X)
    params = {**variables["params"], "decoder_kernel": jnp.asarray(ROWS)}
    dictionary = model.apply({"params": params}, method="dictionary")
    np.testing.assert_allclose(dictionary, ROWS / NORMS[:, None], rtol=1e-6)


def test_relu_rows_are_free_and_its_l1_weighs_each_latent_by_its_directions_norm():
    """h = x W + (0, 0, 0, 0.5), W reading x1, x2, x3 and x1 - x3: f = (1, 2, 3, 0) and
    (0, 0, 2, 0); L1 = mean(5 + 2 2 + 0.5 3, 0.5 2) = mean(10.5, 1) = 5.75 (4 with unit rows).
    x_hat = f V: (3, 4, 0) + 2 (0, 0, 2) + 3 (0.5, 0, 0) = (4.5, 4, 4), and 2 (0.5, 0, 0)."""
    model = model_of("relu")
    encoder = [[1, 0, 0, 1], [0, 1, 0, 0], [0, 0, 1, -1]]
    params = hand_params(ROWS, encoder)
    params["encoder_bias"] = jnp.array([0, 0, 0, 0.5])
    x = jnp.array([[1.0, 2.0, 3.0], [-1.0, 0.0, 2.0]])
    np.testing.assert_array_equal(model.apply({"params": params}, method="dictionary"), ROWS)
    x_hat, aux = model.apply({"params": params}, x)
    np.testing.assert_allclose(aux["code"], [[1, 2, 3, 0], [0, 0, 2, 0]])
    np.testing.assert_allclose(aux["terms"]["l1"], 5.75, rtol=1e-6)
    np.testing.assert_allclose(x_hat, [[4.5, 4, 4], [1, 0, 0]], rtol=1e-6)


# --- the starts: encoder the decoder's transpose, pre-bias the data's mean ----------------------


@pytest.mark.parametrize("activation", sae.ACTIVATIONS)
def test_the_encoder_starts_as_the_dictionarys_transpose(activation):
    """Each latent first reads its own direction. The rows start unit, except ReLU's free ones
    at FREE_ROW_NORM; the gated encoder starts at FREE_ROW_NORM times the transpose."""
    model = model_of(activation, input_dim=5, latents=7, k=2, aux_k=2)
    params = model.init(jax.random.key(1), jnp.zeros((2, 5)))["params"]
    dictionary = model.apply({"params": params}, method="dictionary")
    norm = sae.FREE_ROW_NORM if activation == "relu" else 1.0
    np.testing.assert_allclose(jnp.linalg.norm(dictionary, axis=-1), norm, rtol=1e-6)
    scale = sae.FREE_ROW_NORM if activation == "gated" else 1.0
    np.testing.assert_allclose(params["encoder_kernel"], scale * dictionary.T, rtol=1e-6)


def test_the_config_sizes_the_dictionary_and_the_pre_bias_starts_at_the_data_mean():
    """sae_topk's model fitted to 3-D vectors: 16 x 3 latents, AuxK's aux_k 3 // 2 = 1; the
    pre-encoder bias starts at the training vectors' mean, nothing else changed."""
    cfg = factory.fit_to_data(configs.get("sae_topk").model, (3,), None)
    assert (cfg.latents, cfg.aux_k) == (48, 1)
    model = factory.build(cfg)
    params = model.init(jax.random.key(0), jnp.zeros((1, 3)))["params"]
    train_x = jnp.array([[1.0, 2.0, 3.0], [3.0, -2.0, 0.0], [2.0, 3.0, -6.0]])
    started = factory.init_from_data(cfg, {"params": params}, train_x)["params"]
    np.testing.assert_allclose(started["pre_bias"], [2.0, 1.0, -1.0])
    for name in params:
        if name != "pre_bias":
            np.testing.assert_array_equal(started[name], params[name])


# --- gated ----------------------------------------------------------------------------------------

# x = (1, 2, -1) read by x1 + 0, x2 - 1, x3 + 0.5, x1 + x2:
# x W = (1, 2, -1, 3), h = (1, 1, -0.5, 3).
GATED_X = jnp.array([[1.0, 2.0, -1.0]])
GATED_ENCODER = [[1, 0, 0, 1], [0, 1, 0, 1], [0, 0, 1, 0]]


def gated_params(pre_bias=(0.0, 0.0, 0.0)):
    params = hand_params(DIRECTIONS, GATED_ENCODER, pre_bias)
    params["encoder_bias"] = jnp.array([0.0, -1.0, 0.5, 0.0])
    params["gate_scale"] = jnp.log(jnp.array([1.0, 2.0, 1.0, 0.5]))
    params["magnitude_bias"] = jnp.array([-1.5, -0.5, 3.0, 0.2])
    return params


def test_gated_fires_where_the_gate_opens_at_the_magnitude_paths_size():
    """Magnitude exp(r) (h - b_enc) + b_mag = (1 - 1.5, 2 2 - 0.5, -1 + 3, 0.5 3 + 0.2) =
    (-0.5, 3.5, 2, 1.7); gate h > 0 = (1, 1, 0, 1): f = (0, 3.5, 0, 1.7), latent 1 open but
    negative, latent 3 positive but shut. L1 on ReLU(h) = 1 + 1 + 3 = 5; the gate's rebuild
    ReLU(h) W_dec = (1, 0, 0) + (0, 1, 0) + 3 (0.6, 0.8, 0) = (2.8, 3.4, 0), |x - it|^2 =
    1.8^2 + 1.4^2 + 1 = 6.2."""
    model = model_of("gated")
    x_hat, aux = model.apply({"params": gated_params()}, GATED_X)
    np.testing.assert_allclose(aux["code"], [[0, 3.5, 0, 1.7]], rtol=1e-6)
    np.testing.assert_allclose(x_hat, [[1.02, 4.86, 0]], rtol=1e-6)  # 3.5 d2 + 1.7 d4
    np.testing.assert_allclose(aux["terms"]["l1"], 5.0, rtol=1e-6)
    np.testing.assert_allclose(aux["terms"]["gate"], 6.2, rtol=1e-6)


def test_gated_rebuild_trains_the_gate_through_a_frozen_decoder():
    """The gate term's gradient reaches the encoder, and the pre-bias only where it enters h:
    none to the decoder's rows or the magnitude path, and the pre-bias's is that of the term
    with the decoder's copy of it held fixed (not the larger one through the rebuild too)."""
    model = model_of("gated")
    pre_bias = jnp.array([0.1, -0.2, 0.3])
    params = gated_params(pre_bias)

    def gate(p):
        return model.apply({"params": p}, GATED_X)[1]["terms"]["gate"]

    grads = jax.grad(gate)(params)
    for name in ("decoder_kernel", "gate_scale", "magnitude_bias"):
        np.testing.assert_array_equal(grads[name], 0, err_msg=name)
    assert jnp.any(grads["encoder_kernel"] != 0)

    def by_hand(b, frozen):  # |x - ReLU((x - b) W + b_enc) W_dec - frozen|^2
        h = (GATED_X - b) @ params["encoder_kernel"] + params["encoder_bias"]
        return jnp.sum(jnp.square(GATED_X - jax.nn.relu(h) @ DIRECTIONS - frozen))

    encoder_path = jax.grad(by_hand)(pre_bias, pre_bias)
    both_paths = jax.grad(lambda b: by_hand(b, b))(pre_bias)
    assert not np.allclose(encoder_path, both_paths)
    np.testing.assert_allclose(grads["pre_bias"], encoder_path, rtol=1e-5)


# --- AuxK and dead latents ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "activation, auxk, since_fired",
    [
        # topk, k = 1: x1 keeps 3 d1, e1 = (0, 1, 0); x2 keeps 2 d3, e2 = 0. Dead: latents 2 and
        # 4, x1's pre-activations 1 and 2.6: e_hat1 = d2 + 2.6 d4 = (1.56, 3.08, 0), |e1 -
        # e_hat1|^2 = 1.56^2 + 2.08^2 = 6.76; x2's dead pre-activations are 0: 0. Mean 3.38.
        ("topk", 3.38, [0, 12, 0, 12]),
        # batchtopk, k = 1 x B = 2: 3 and 2.6 both in x1, x_hat1 = (4.56, 2.08, 0), e1 =
        # (-1.56, -1.08, 0); x2 keeps none, e2 = (0, 0, 2). |e1 - (1.56, 3.08, 0)|^2 = 3.12^2 +
        # 4.16^2 = 27.04, |e2|^2 = 4; mean 15.52. Latents 1 and 4 fired.
        ("batchtopk", 15.52, [0, 12, 5, 0]),
    ],
)
def test_auxk_rebuilds_the_residual_from_dead_latents_and_usage_is_counted(
    activation, auxk, since_fired
):
    """since_fired (0, 10, 3, 10) at dead_after 10: latents 2 and 4 dead, half of them, and
    aux_k = 2 takes both, as the paper's AuxK does. After the batch of two, those that fired are
    back at 0, the others 2 older."""
    model = model_of(activation, k=1, aux_k=2, dead_after=10)
    params = hand_params(**({"threshold": 0.0} if activation == "batchtopk" else {}))
    usage = {"sae_usage": {"since_fired": jnp.array([0.0, 10.0, 3.0, 10.0])}}
    (_, aux), updated = model.apply(
        {"params": params, **usage}, X, train=True, mutable=["sae_usage"]
    )
    np.testing.assert_allclose(aux["terms"]["auxk"], auxk, rtol=1e-5)
    assert aux["stats"]["dead_fraction"] == 0.5
    np.testing.assert_array_equal(updated["sae_usage"]["since_fired"], since_fired)


def test_auxk_with_more_dead_latents_than_aux_k_takes_the_longest_dead():
    """Latents 2 and 4 dead for 10 and 12 samples, aux_k = 1: latent 4 alone rebuilds, 2.6 d4 =
    (1.56, 2.08, 0) against e1 = (0, 1, 0): 1.56^2 + 1.08^2 = 3.6; x2: 0. Mean 1.8."""
    model = model_of("topk", k=1, aux_k=1, dead_after=10)
    usage = {"sae_usage": {"since_fired": jnp.array([0.0, 10.0, 3.0, 12.0])}}
    (_, aux), updated = model.apply(
        {"params": hand_params(), **usage}, X, train=True, mutable=["sae_usage"]
    )
    np.testing.assert_allclose(aux["terms"]["auxk"], 1.8, rtol=1e-5)
    np.testing.assert_array_equal(updated["sae_usage"]["since_fired"], [0, 12, 0, 14])


def test_auxk_is_zero_with_no_latent_dead():
    """since_fired 9 everywhere, under dead_after 10: no term, no dead fraction; latents 1 and
    3 fired and start again, 2 and 4 reach 11, dead by the next batch."""
    model = model_of("topk", k=1, aux_k=1, dead_after=10)
    usage = {"sae_usage": {"since_fired": jnp.full(4, 9.0)}}
    (_, aux), updated = model.apply(
        {"params": hand_params(), **usage}, X, train=True, mutable=["sae_usage"]
    )
    assert aux["terms"]["auxk"] == 0.0
    assert aux["stats"]["dead_fraction"] == 0.0
    np.testing.assert_array_equal(updated["sae_usage"]["since_fired"], [0, 11, 0, 11])


def test_the_loss_weighs_each_sae_term_by_its_field():
    """recon (|x - x_hat|^2 per vector) + auxk_weight AuxK for topk, with the usage updated;
    + sparsity_weight L1 for relu. topk at k = 1 rebuilds (3, 0, 0) and (0, 0, 2): recon
    (1 + 0) / 2 = 0.5, AuxK 3.38 (above)."""
    usage = {"sae_usage": {"since_fired": jnp.array([0.0, 10.0, 3.0, 10.0])}}
    config = configs.get("sae_topk")
    loss_fn = autoencoding.make_loss_fn(model_of("topk", k=1, aux_k=2, dead_after=10), config.loss)
    loss, (metrics, updated) = loss_fn(hand_params(), X, jax.random.key(0), True, collections=usage)
    np.testing.assert_allclose(metrics["recon"], 0.5, rtol=1e-6)
    np.testing.assert_allclose(loss, 0.5 + config.loss.auxk_weight * 3.38, rtol=1e-5)
    np.testing.assert_array_equal(updated["sae_usage"]["since_fired"], [0, 12, 0, 12])

    config = configs.get("sae_relu")
    loss_fn = autoencoding.make_loss_fn(model_of("relu"), config.loss)
    loss, metrics = loss_fn(hand_params(), X, jax.random.key(0), False)
    # ReLU keeps all of h = (3, 1, 0, 2.6), (0, 0, 2, 0): L1 with unit rows mean(6.6, 2) = 4.3.
    np.testing.assert_allclose(metrics["l1"], 4.3, rtol=1e-6)
    want = metrics["recon"] + config.loss.sparsity_weight * 4.3
    np.testing.assert_allclose(loss, want, rtol=1e-6)


# --- batchtopk's threshold ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "theta, target",
    [(0.0, 2.6), (1.0, 0.9 * 1.0 + 0.1 * 2.6)],  # the first batch's; then the running mean
)
def test_batchtopk_threshold_term_pulls_theta_to_the_running_smallest_kept(theta, target):
    """k = 1 x B = 2 keeps 3 and 2.6, both of x1: the smallest kept is 2.6. The term's gradient
    theta - target, and no other parameter's."""
    model = model_of("batchtopk", k=1, aux_k=1, threshold_decay=0.9)
    params = hand_params(threshold=theta)

    def threshold_term(p):
        _, aux = model.apply({"params": p}, X, train=True)
        return aux["terms"]["threshold"], aux["code"]

    grads, code = jax.grad(threshold_term, has_aux=True)(params)
    np.testing.assert_allclose(code, [[3, 0, 0, 2.6], [0, 0, 0, 0]], rtol=1e-6)
    np.testing.assert_allclose(grads["threshold"], theta - target, rtol=1e-5)
    for name in ("encoder_kernel", "encoder_bias", "decoder_kernel", "pre_bias"):
        np.testing.assert_array_equal(grads[name], 0, err_msg=name)


def test_batchtopk_threshold_is_assigned_in_one_step_and_encodes_each_vector_alone():
    """The optimiser moves `threshold` by its whole gradient (SGD at rate 1): after one step
    from 0 it is the batch's smallest kept, 2.6. At eval each vector keeps h > threshold: at
    threshold 1, x1's h = 1 is not kept and x2 keeps its 2, which training's batch gave none."""
    config = configs.get("sae_batchtopk")
    model = model_of("batchtopk", k=1, aux_k=1)
    loss_fn = autoencoding.make_loss_fn(model, config.loss)
    tx = make_optimizer(config.opt, factory.assigned_groups(config.model))
    params = hand_params(threshold=0.0)
    grads, _ = jax.grad(loss_fn, has_aux=True)(params, X, jax.random.key(0), True)
    updates, _ = tx.update(grads, tx.init(params), params)
    np.testing.assert_allclose(params["threshold"] + updates["threshold"], 2.6, rtol=1e-6)

    _, aux = model.apply({"params": hand_params(threshold=1.0)}, X)
    np.testing.assert_allclose(aux["code"], [[3, 0, 0, 2.6], [0, 0, 2, 0]], rtol=1e-6)
    assert "threshold" not in aux["terms"]


# --- statistics -----------------------------------------------------------------------------------


def test_reconstruction_stats_of_a_hand_worked_batch():
    """x = (1, 0), (3, 4) about their mean (2, 2): variance 5 + 5 = 10; x_hat = (1, 1), (3, 3):
    error 1 + 1 = 2, FVU 0.2, explained 0.8, MSE 2 / 4 = 0.5; cosines 1 / sqrt 2 and
    21 / (5 3 sqrt 2); L0 counts positive latents only: (2 + 1) / 2."""
    x = jnp.array([[1.0, 0.0], [3.0, 4.0]])
    x_hat = jnp.array([[1.0, 1.0], [3.0, 3.0]])
    f = jnp.array([[0.5, 0.0, 2.0], [0.0, -1.0, 3.0]])
    stats = sae.reconstruction_stats(x, x_hat, f)
    want = {
        "l0": 1.5,
        "fvu": 0.2,
        "explained_variance": 0.8,
        "mse": 0.5,
        "cosine": (1 / np.sqrt(2) + 21 / (15 * np.sqrt(2))) / 2,
    }
    for name, value in want.items():
        np.testing.assert_allclose(stats[name], value, rtol=1e-5, err_msg=name)


# --- learning real data ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def digit_vectors():
    """1000 real mnist5k training digits, flattened to 784-d float vectors."""
    x, _ = sources.load("mnist5k", "train")
    return x.reshape(len(x), -1)[:1000]


@pytest.mark.slow  # 23 s for the five
@pytest.mark.parametrize(
    "name", ["sae_topk", "sae_batchtopk", "sae_relu", "sae_jumprelu", "sae_gated"]
)
def test_each_shipped_sae_learns_real_digit_vectors(name, digit_vectors, tmp_path, monkeypatch):
    """Three short epochs from the shipped config (256 latents, k = 8): the held-out
    reconstruction error falls and explains some of the variance (measured: explained variance
    0.18 for relu, 0.32 to 0.62 for the others)."""
    monkeypatch.setattr(figures, "write_figures", lambda *args, **kwargs: None)
    run = aejax.fit(
        name,
        train=digit_vectors,
        workdir=tmp_path / name,
        data__activations="",
        model__latents=256,
        model__k=8,
        train__epochs=3,
        train__batch_size=100,
        train__chunk=1,
    )
    rows = run.metrics()
    assert len(rows) == 3
    assert rows[-1]["test/recon"] < rows[0]["test/recon"], rows
    assert rows[-1]["test/explained_variance"] > 0, rows[-1]


def test_fvu_against_the_training_variance_averages_over_batches_to_the_whole():
    """Evaluation averages batch means weighted by size: with the training vectors' variance as
    the denominator a last batch of one vector counts as one vector, not as a zero variance."""
    rng = np.random.default_rng(0)
    x, x_hat = rng.normal(size=(5, 3)), rng.normal(size=(5, 3))
    f = np.zeros((5, 4))
    whole = sae.reconstruction_stats(x, x_hat, f, variance=2.0)["fvu"]
    parts = [sae.reconstruction_stats(x[s], x_hat[s], f[s], 2.0)["fvu"] for s in (slice(0, 4), slice(4, 5))]
    np.testing.assert_allclose((4 * parts[0] + parts[1]) / 5, whole, rtol=1e-6)
    np.testing.assert_allclose(whole, np.sum(np.square(x - x_hat)) / 5 / 2.0, rtol=1e-6)
