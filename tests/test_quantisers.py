"""The quantisers: FSQ's bound, levels and mixed-radix indices, residual VQ's levels and terms,
LFQ's signs, bits and entropy terms, each against hand-worked numbers; their straight-through
gradients; and each learning, in a few steps and through `aejax.fit` on mnist5k."""

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import aejax
from aejax import configs
from aejax.data import sources
from aejax.data.dataset import as_float
from aejax.evaluation import figures
from aejax.models import bottlenecks, factory
from aejax.models.quantisers import (
    FiniteScalarQuantizer,
    LookupFreeQuantizer,
    ResidualVectorQuantizer,
)
from aejax.objectives import autoencoding
from aejax.training.state import create_state
from aejax.training.step import make_train_step

# --- FSQ -----------------------------------------------------------------------------------------


def test_fsq_bounds_rounds_and_numbers_a_hand_worked_code():
    """Levels (3, 4), the odd and the even case. L = 3: half = 2 (0.999) / 2 = 0.999, no offset;
    L = 4: half = 1.4985, offset 0.5, shift tan(0.5 / 1.4985) = 0.3466; codes divided by
    L // 2 = 1 and 2, digits code * (L // 2) + L // 2, index d1 + 3 d2.
      (2, -3):    0.999 tanh 2 = 0.963 -> 1;  1.4985 tanh(-2.6534) - 0.5 = -1.9837 -> -2, code -1;
                  digits (2, 0): index 2
      (-0.6, 1):  0.999 tanh(-0.6) = -0.5365 -> -1;  1.4985 tanh(1.3466) - 0.5 = 0.8086 -> 1,
                  code 0.5; digits (0, 3): index 9
      (0.2, 0):   0.1972 -> 0;  1.4985 tanh(0.3466) - 0.5 = -0.0004 -> 0; digits (1, 2): index 7"""
    fsq = FiniteScalarQuantizer(levels=(3, 4))
    h = jnp.array([[2.0, -3.0, -0.6, 1.0, 0.2, 0.0]])  # one image, three vectors
    np.testing.assert_allclose(
        fsq.apply({}, h.reshape(3, 2), method="bound"),
        [[0.9630, -1.9837], [-0.5365, 0.8086], [0.1972, -0.0004]],
        atol=2e-4,
    )
    encoding = fsq.apply({}, h, method="encode")
    np.testing.assert_array_equal(encoding.code, [[1.0, -1.0, -1.0, 0.5, 0.0, 0.0]])
    np.testing.assert_array_equal(encoding.indices, [[2, 9, 7]])
    np.testing.assert_array_equal(
        fsq.apply({}, encoding.indices, method="vectors"), encoding.code.reshape(1, 3, 2)
    )
    z, aux = fsq.apply({}, h)
    np.testing.assert_array_equal(z, encoding.code)
    assert aux["terms"] == {}
    np.testing.assert_allclose(aux["stats"]["perplexity"], 3.0)  # three entries, once each
    np.testing.assert_allclose(aux["stats"]["usage"], 3 / 12)
    assert (fsq.num_codes, fsq.code_dim, fsq.indexed_codes) == (12, 2, True)


def test_fsq_implies_a_codebook_of_the_product_of_its_levels():
    """Every index names its own point of the grid: 4 x 3 x 2 = 24 distinct points in [-1, 1]^3,
    each dimension taking its level count of values."""
    fsq = FiniteScalarQuantizer(levels=(4, 3, 2))
    points = np.asarray(fsq.apply({}, jnp.arange(24), method="vectors"))
    assert len({tuple(p) for p in points}) == 24 and np.abs(points).max() == 1.0
    assert [len(set(points[:, i])) for i in range(3)] == [4, 3, 2]
    h = 3 * jax.random.normal(jax.random.key(0), (50, 6))  # any code's index names its point
    encoding = fsq.apply({}, h, method="encode")
    np.testing.assert_array_equal(
        fsq.apply({}, encoding.indices, method="vectors").reshape(h.shape), encoding.code
    )


def test_fsq_passes_gradients_straight_through_the_rounding():
    """d sum(w * z) / dh = w * bound'(h) / (L // 2): the rounding is the identity backwards."""
    fsq = FiniteScalarQuantizer(levels=(8, 5, 5, 5))
    h = jax.random.normal(jax.random.key(0), (3, 2, 2, 8))
    w = jax.random.normal(jax.random.key(1), h.shape)
    half_width = jnp.array([4.0, 2.0, 2.0, 2.0])

    def bounded(h):
        return fsq.apply({}, h.reshape(-1, 4), method="bound").reshape(h.shape)

    got = jax.jit(jax.grad(lambda h: jnp.sum(w * fsq.apply({}, h)[0])))(h)
    want = jax.jit(jax.grad(lambda h: jnp.sum(w * bounded(h) / jnp.tile(half_width, 2))))(h)
    np.testing.assert_allclose(got, want, rtol=1e-6)
    assert np.all(np.asarray(got) != 0)


# --- residual VQ ---------------------------------------------------------------------------------


def _rvq():
    """Two levels of two 1-d entries, by hand: {0, 4}, then {-1, 1}."""
    rvq = ResidualVectorQuantizer(num_codes=2, code_dim=1, depth=2)
    return rvq, {"params": {"codebook": jnp.array([[[0.0], [4.0]], [[-1.0], [1.0]]])}}


def test_rvq_quantises_each_residual_and_sums_its_levels_terms():
    """h = 3: 4 (residual -1), then -1: code 3.  h = 1.2: 0 (residual 1.2), then 1: code 1.
    Commitment (and codebook) per image, over levels and vectors: (1 + 1.44) + (0 + 0.04)."""
    rvq, variables = _rvq()
    h = jnp.array([[3.0, 1.2]])
    z, aux = rvq.apply(variables, h)
    np.testing.assert_allclose(z, [[3.0, 1.0]])
    np.testing.assert_array_equal(aux["indices"], [[[1, 0], [0, 1]]])  # [B, N, levels]
    np.testing.assert_allclose(aux["terms"]["commitment"], 2.48, rtol=1e-6)
    np.testing.assert_allclose(aux["terms"]["codebook"], 2.48, rtol=1e-6)
    assert set(aux["stats"]) == {"perplexity", "perplexity2"}  # each level's: both entries used
    np.testing.assert_allclose([aux["stats"]["perplexity"], aux["stats"]["perplexity2"]], 2.0)
    encoding = rvq.apply(variables, h, method="encode")
    np.testing.assert_allclose(encoding.code, z)
    np.testing.assert_allclose(rvq.apply(variables, encoding.indices, method="vectors")[..., 0], z)


def test_rvq_gradients_go_straight_through_and_each_term_to_its_side():
    """The code passes w back to h unchanged; the commitment moves h alone, the codebook
    terms each level's codebook alone."""
    rvq, variables = _rvq()
    h = jnp.array([[3.0, 1.2], [-0.5, 5.5]])
    w = jnp.array([[1.0, -2.0], [0.5, 3.0]])
    grad = jax.jit(jax.grad(lambda h: jnp.sum(w * rvq.apply(variables, h)[0])))
    np.testing.assert_allclose(grad(h), w)

    def term(name):
        return lambda v, h: rvq.apply(v, h)[1]["terms"][name]

    g_params, g_h = jax.jit(jax.grad(term("commitment"), argnums=(0, 1)))(variables, h)
    assert not np.any(g_params["params"]["codebook"]) and np.any(g_h)
    g_params, g_h = jax.jit(jax.grad(term("codebook"), argnums=(0, 1)))(variables, h)
    assert np.all(np.any(g_params["params"]["codebook"], axis=(1, 2))) and not np.any(g_h)


# --- LFQ -----------------------------------------------------------------------------------------


def _entropies_by_enumeration(h_NxD, temperature):
    """Mean entropy of q(c | h) = softmax(-|h - c|^2 / T) over the 2^D codes, and of the mean q."""
    codes = np.array(list(np.ndindex(*[2] * h_NxD.shape[1])))[:, ::-1] * 2.0 - 1.0
    logits = -((h_NxD[:, None] - codes[None]) ** 2).sum(-1) / temperature
    q = np.exp(logits - logits.max(1, keepdims=True))
    q /= q.sum(1, keepdims=True)

    def entropy(p):
        return -(p * np.log(p)).sum(-1)

    return entropy(q).mean(), entropy(q.mean(0))


def test_lfq_quantises_to_signs_numbers_bits_and_weighs_its_terms():
    """h = (0.5, -2, 1.5): code (1, -1, 1), bits 1, 0, 1, index 1 + 4 = 5, commitment
    0.25 + 1 + 0.25 = 1.5. The entropy terms against q(c | h) enumerated over the 8 codes."""
    lfq = LookupFreeQuantizer(code_dim=3, temperature=4.0)
    h = jnp.array([[0.5, -2.0, 1.5], [-0.1, 0.3, -0.7]])  # two images, one vector each
    z, aux = lfq.apply({}, h)
    np.testing.assert_array_equal(z, [[1.0, -1.0, 1.0], [-1.0, 1.0, -1.0]])
    np.testing.assert_array_equal(aux["indices"], [[5], [2]])
    np.testing.assert_array_equal(lfq.apply({}, aux["indices"], method="vectors")[:, 0], z)
    commitment = (0.25 + 1 + 0.25 + 0.81 + 0.49 + 0.09) / 2
    np.testing.assert_allclose(aux["terms"]["commitment"], commitment, rtol=1e-6)
    per_code, of_mean = _entropies_by_enumeration(np.asarray(h, np.float64), 4.0)
    np.testing.assert_allclose(aux["terms"]["entropy"], per_code, rtol=1e-5)
    np.testing.assert_allclose(aux["terms"]["diversity"], 3 * np.log(2) - of_mean, rtol=1e-5)
    np.testing.assert_allclose(aux["stats"]["perplexity"], 2.0)
    np.testing.assert_allclose(aux["stats"]["usage"], 2 / 8)


def test_lfq_entropy_terms_at_their_extremes():
    """One bit. Far from 0, each code is certain (entropy 0); a batch split between the two
    codes uses the codebook uniformly (diversity 0), one all on one code is log 2 from it."""
    lfq = LookupFreeQuantizer(code_dim=1, temperature=1.0)
    split = lfq.apply({}, jnp.array([[9.0], [-9.0]]))[1]["terms"]
    np.testing.assert_allclose([split["entropy"], split["diversity"]], 0.0, atol=1e-6)
    same = lfq.apply({}, jnp.array([[9.0], [9.0]]))[1]["terms"]
    np.testing.assert_allclose(same["diversity"], np.log(2), rtol=1e-5)
    at_zero = lfq.apply({}, jnp.zeros((2, 1)))[1]["terms"]  # q = (1/2, 1/2): log 2 each
    np.testing.assert_allclose([at_zero["entropy"], at_zero["diversity"]], [np.log(2), 0.0],
                               atol=1e-6)  # fmt: skip


def test_lfq_passes_gradients_straight_through_the_sign():
    lfq = LookupFreeQuantizer(code_dim=4)
    h = jax.random.normal(jax.random.key(0), (3, 2, 2, 8))
    w = jax.random.normal(jax.random.key(1), h.shape)
    grad = jax.jit(jax.grad(lambda h: jnp.sum(w * lfq.apply({}, h)[0])))
    np.testing.assert_allclose(grad(h), w)


# --- learning ------------------------------------------------------------------------------------

QUANTISERS = ["fsq", "rvq", "lfq"]


@pytest.mark.parametrize("name", QUANTISERS)
def test_each_shipped_quantiser_config_lowers_its_loss_in_a_few_steps(tiny, name):
    """10 Adam steps on 64 mnist5k digits, the config's layers at most 8 wide: the loss falls
    at every step, by a tenth in all (15 to 16% for fsq and rvq), and the batch uses more than
    two codes."""
    x = as_float(sources.load("mnist5k", "train")[0][:64])
    config = tiny(name, max_width=8, model__code_dim=8)  # rvq's 16 would not divide 8
    model = factory.build(config.model)
    step = jax.jit(make_train_step(autoencoding.make_loss_fn(model, config.loss)))
    state = create_state(config, x)
    losses = []
    for i in range(10):
        state, metrics = step(state, x, jax.random.key(i))
        losses.append(float(metrics["loss"]))
    assert all(np.diff(losses) < 0) and losses[-1] < 0.9 * losses[0], losses
    assert metrics["perplexity"] > 2, metrics


@pytest.mark.slow
@pytest.mark.parametrize("name", QUANTISERS)
def test_each_quantiser_config_trains_on_mnist5k_using_its_codebook(
    name, tmp_path, monkeypatch
):
    """One epoch of mnist5k through `aejax.fit`, from the shipped config: the test loss is
    below the epoch's mean training loss and the codebook stays in use, twice the collapse
    warning's perplexity (measured: fsq 11.3 of 1000, rvq's first level 7.4 of 64, lfq 63.9
    of 256)."""
    monkeypatch.setattr(figures, "write_figures", lambda *args, **kwargs: None)
    run = aejax.fit(name, workdir=tmp_path, train__epochs=1)
    row = run.metrics()[-1]
    assert row["test/loss"] < row["train/loss"], row
    assert row["train/perplexity"] > 2 * bottlenecks.COLLAPSED_PERPLEXITY, row


@pytest.mark.parametrize("name", QUANTISERS)
def test_each_declares_indexed_codes_and_fsq_and_lfq_take_a_code_prior(name):
    """One index per vector (FSQ's and LFQ's) is what the code prior models, over their
    implied codebooks; residual VQ's index per level is refused, saying so."""
    model = configs.load(name).model
    assert factory.build(model).capabilities.indexed_codes
    config = configs.load("vqvae_prior").model
    config.autoencoder = model
    if name == "rvq":
        with pytest.raises(ValueError, match=r"one codebook index per code vector.*rvq"):
            factory.build(config)
        return
    prior = factory.build(config)
    x = jax.ShapeDtypeStruct((2, 28, 28, 1), jnp.float32)
    variables = jax.eval_shape(prior.init, jax.random.key(0), x)
    logits, aux = jax.eval_shape(prior.apply, variables, x)
    assert logits.shape == (2, 49, {"fsq": 1000, "lfq": 256}[name])  # a code a position
    images = jax.eval_shape(partial(prior.apply, method="decode"), variables, aux["codes"])
    assert images.shape == x.shape
