"""Sparse autoencoders on vectors: a dictionary of `latents` directions that rebuilds a
network's activations from a few of them at a time, so that each direction can be read as a
feature of that network.

    h = (x - b_pre) @ W_enc + b_enc,   f = sparsify(h),   x_hat = f @ W_dec + b_pre

`b_pre` starts at the training vectors' mean (`factory.init_from_data`) and `W_enc` at the
transpose of `W_dec`, whose rows (the dictionary's directions; "columns" in the papers' D x L
convention) have unit norm by parametrisation: `W_dec = V / |V|` row by row, so no step can
shrink them to cheat a sparsity penalty. How `f` is made sparse, `model.bottleneck`:

- "relu": ReLU and an L1 penalty on each activation times its direction's norm, the rows of
  `W_dec` left free ("Towards Monosemanticity", Bricken et al., 2023; the norm weighting of
  Anthropic's "Circuits Updates - April 2024");
- "topk": the k largest pre-activations of each vector, no penalty; an auxiliary loss (AuxK)
  rebuilds the residual from up to `aux_k` dead latents, so that they learn again
  ("Scaling and evaluating sparse autoencoders", Gao et al., 2024);
- "batchtopk": the k x B largest over a batch of B; at inference a threshold, the running
  mean of the smallest activation kept, so a single vector is encoded alone ("BatchTopK Sparse
  Autoencoders", Bussmann et al., 2024);
- "jumprelu": h where h exceeds a learnt per-latent threshold, an L0 penalty, and the
  thresholds learnt by straight-through estimators with a rectangle kernel ("Jumping Ahead:
  Improving Reconstruction Fidelity with JumpReLU Sparse Autoencoders", Rajamanoharan et al.,
  2024);
- "gated": a gate (h > 0) that decides which latents fire and a magnitude path sharing its
  directions, the L1 penalty on the gate, and an auxiliary rebuild from the gate alone through
  the frozen decoder ("Improving Dictionary Learning with Gated Sparse Autoencoders",
  Rajamanoharan et al., 2024).

Every variant reports the batch's L0, fraction of variance unexplained, explained variance,
MSE and cosine similarity; in training, the fraction of dead latents: those that fired on
none of the last `dead_after` training vectors, counted in the "sae_usage" collection.
"""

import functools
from typing import ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp

from aejax.models.bottlenecks import Encoding
from aejax.models.capabilities import Capabilities

ACTIVATIONS = ("relu", "topk", "batchtopk", "jumprelu", "gated")
USAGE_COLLECTION = "sae_usage"  # samples since each latent last fired
# The scale relu's free directions start at, as Anthropic's April 2024 update starts them, and
# gated's encoder (its transposed unit directions times this). Unscaled, about half the latents
# fire at first and rebuild x many times over (relu: FVU 6.8 after an epoch of mnist5k); 10
# epochs then left gated at FVU 0.95, against 0.26 scaled, both at L0 about 30.
FREE_ROW_NORM = 0.1
ASSIGNED = ("threshold",)  # batchtopk's inference threshold: set by assignment, not descent
# The penalty each variant's sparsity weight needs at aejax's normalisation (mean squared norm
# D), set with the variant when `model.bottleneck` is chosen by an override, unless set too.
DEFAULTS = {
    "relu": {"loss.sparsity_weight": 15.0},  # L0 34 after 10 epochs of mnist5k (5: 709; 30: 2)
    "jumprelu": {"loss.sparsity_weight": 1.0},  # with its thresholds' start, below: L0 about 23
    "gated": {"loss.sparsity_weight": 5.0},  # L0 32 (15: 8)
}


def _rectangle(u: jax.Array) -> jax.Array:
    """The rectangle kernel: 1 on (-1/2, 1/2), else 0."""
    return (jnp.abs(u) < 0.5).astype(u.dtype)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def jump_relu(h: jax.Array, threshold: jax.Array, bandwidth: float) -> jax.Array:
    """h where h > threshold, else 0. Its threshold gradient is the straight-through estimate
    -(threshold / bandwidth) K((h - threshold) / bandwidth), K the rectangle kernel."""
    return h * (h > threshold)


def _jump_relu_fwd(h, threshold, bandwidth):
    return jump_relu(h, threshold, bandwidth), (h, threshold)


def _jump_relu_bwd(bandwidth, residuals, g):
    h, threshold = residuals
    d_threshold = -(threshold / bandwidth) * _rectangle((h - threshold) / bandwidth) * g
    return g * (h > threshold), jnp.sum(d_threshold, axis=0)


jump_relu.defvjp(_jump_relu_fwd, _jump_relu_bwd)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def step(h: jax.Array, threshold: jax.Array, bandwidth: float) -> jax.Array:
    """1 where h > threshold, else 0: what JumpReLU's L0 counts. No gradient reaches h; the
    threshold's is the straight-through -(1 / bandwidth) K((h - threshold) / bandwidth)."""
    return (h > threshold).astype(h.dtype)


def _step_fwd(h, threshold, bandwidth):
    return step(h, threshold, bandwidth), (h, threshold)


def _step_bwd(bandwidth, residuals, g):
    h, threshold = residuals
    d_threshold = -(1 / bandwidth) * _rectangle((h - threshold) / bandwidth) * g
    return jnp.zeros_like(h), jnp.sum(d_threshold, axis=0)


step.defvjp(_step_fwd, _step_bwd)


def top_k(h_BxL: jax.Array, k: int) -> tuple[jax.Array, jax.Array]:
    """The k largest entries of each row, negatives set to 0, and their indices: [B, k] each."""
    values_BxK, indices_BxK = jax.lax.top_k(h_BxL, k)
    return nn.relu(values_BxK), indices_BxK


@functools.partial(jax.custom_vjp, nondiff_argnums=(3,))
def encode_top_k(
    x_BxD: jax.Array, kernel_DxL: jax.Array, bias_L: jax.Array, k: int
) -> tuple[jax.Array, jax.Array]:
    """`jax.lax.top_k` of the pre-activations x W + b: values and indices, [B, k] each.

    Only the kept entries pass a gradient, so W's is a scatter-add of B x k rows of x into
    [L, D] (and b's of the B x k values), where autodiff's x^T dh multiplies x by the dense
    [B, L] dh, zero but for them: at 16,384 latents and k = 32, the step's second-largest
    product. x's gradient is gathered from the kept columns of W, when anything needs it."""
    return jax.lax.top_k(x_BxD @ kernel_DxL + bias_L, k)


def _encode_top_k_fwd(x_BxD, kernel_DxL, bias_L, k):
    values_BxK, indices_BxK = encode_top_k(x_BxD, kernel_DxL, bias_L, k)
    return (values_BxK, indices_BxK), (x_BxD, kernel_DxL, indices_BxK)


def _encode_top_k_bwd(k, residuals, cotangents):
    x_BxD, kernel_DxL, indices_BxK = residuals
    g_BxK = cotangents[0]  # the indices are integers: no cotangent
    (latents,), d = kernel_DxL.shape[1:], x_BxD.shape[1]
    rows = indices_BxK.reshape(-1)
    kept_rows = (g_BxK[..., None] * x_BxD[:, None, :]).reshape(-1, d)
    d_kernel = jnp.zeros((latents, d), x_BxD.dtype).at[rows].add(kept_rows).T
    d_bias = jnp.zeros(latents, x_BxD.dtype).at[rows].add(g_BxK.reshape(-1))
    d_x = jnp.einsum("bk,bkd->bd", g_BxK, kernel_DxL.T[indices_BxK])
    return d_x, d_kernel, d_bias


encode_top_k.defvjp(_encode_top_k_fwd, _encode_top_k_bwd)


def scatter(values_BxK: jax.Array, indices_BxK: jax.Array, latents: int) -> jax.Array:
    """The dense latents [B, L] with `values` at `indices` and 0 elsewhere."""
    rows_Bx1 = jnp.arange(values_BxK.shape[0])[:, None]
    dense = jnp.zeros((values_BxK.shape[0], latents), values_BxK.dtype)
    return dense.at[rows_Bx1, indices_BxK].set(values_BxK)


def sparse_decode(values_BxK, indices_BxK, dictionary_LxD) -> jax.Array:
    """sum_j values_j d_(indices_j): the k chosen directions gathered and summed, which costs
    k / L of multiplying the dense latents by the whole dictionary, in the step and in its
    gradient alike."""
    return jnp.einsum("bk,bkd->bd", values_BxK, dictionary_LxD[indices_BxK])


def batch_top_k(h_BxL: jax.Array, k: int) -> tuple[jax.Array, jax.Array]:
    """The k x B largest entries of the batch kept (negatives set to 0), and the smallest
    positive one kept: what the inference threshold averages."""
    flat = h_BxL.ravel()
    values, indices = jax.lax.top_k(flat, k * h_BxL.shape[0])
    kept = jnp.zeros_like(flat).at[indices].set(nn.relu(values)).reshape(h_BxL.shape)
    smallest = jnp.min(jnp.where(values > 0, values, jnp.inf))
    return kept, jnp.where(jnp.isfinite(smallest), smallest, 0.0)


def reconstruction_stats(
    x_BxD: jax.Array, x_hat_BxD: jax.Array, f_BxL: jax.Array, variance: float | None = None
) -> dict:
    """The batch's L0 (latents firing per vector: positive entries of `f`, the latents or TopK's
    kept values alone), FVU (the squared error per vector over
    `variance`, the training vectors' total variance; without it, the batch's own), explained
    variance (1 - FVU), MSE (per element) and mean cosine similarity. With a fixed `variance`,
    FVU is a mean over vectors, so batch means average to the dataset's exactly."""
    error = jnp.sum(jnp.square(x_BxD - x_hat_BxD))
    if variance is None:
        variance = jnp.mean(jnp.sum(jnp.square(x_BxD - jnp.mean(x_BxD, axis=0)), axis=-1))
    fvu = error / len(x_BxD) / variance
    cosine = jnp.sum(x_BxD * x_hat_BxD, axis=-1) / (
        jnp.linalg.norm(x_BxD, axis=-1) * jnp.linalg.norm(x_hat_BxD, axis=-1) + 1e-8
    )
    return {
        "l0": jnp.mean(jnp.sum(f_BxL > 0, axis=-1)),
        "fvu": fvu,
        "explained_variance": 1 - fvu,
        "mse": error / x_BxD.size,
        "cosine": jnp.mean(cosine),
    }


class SparseAutoencoder(nn.Module):
    """A dictionary of `latents` directions for vectors of `input_dim`, sparse by `activation`
    (one of ACTIVATIONS; the module docstring says how each works)."""

    input_dim: int
    latents: int
    activation: str = "topk"
    k: int = 32  # topk, batchtopk: latents kept per vector
    aux_k: int = 512  # topk, batchtopk: dead latents AuxK rebuilds the residual from
    dead_after: int = 50_000  # training vectors without firing after which a latent is dead
    threshold_decay: float = 0.99  # batchtopk: of the running mean of the smallest kept value
    threshold_init: float = 1.0  # jumprelu: each latent's threshold at the start
    bandwidth: float = 0.1  # jumprelu: of the straight-through estimators' rectangle kernel
    variance: float | None = None  # the training vectors' total variance, which FVU divides

    capabilities: ClassVar[Capabilities] = Capabilities(reconstructs=True, dictionary=True)
    # The latent axis of each variable that has one: a dictionary too big for one device is
    # split along it over a mesh's "model" axis (train.model_parallel; parallel.state_sharding).
    model_parallel_axes: ClassVar[dict[str, int]] = {
        "decoder_kernel": 0,  # [L, D]
        "encoder_kernel": 1,  # [D, L]
        "encoder_bias": 0,
        "log_threshold": 0,
        "gate_scale": 0,
        "magnitude_bias": 0,
        "since_fired": 0,  # the usage counters
    }

    def setup(self):
        d, n = self.input_dim, self.latents
        self.pre_bias = self.param("pre_bias", nn.initializers.zeros, (d,))
        norm = FREE_ROW_NORM if self.activation == "relu" else 1.0
        directions = lambda rng, shape: norm * _unit_rows(jax.random.normal(rng, shape))
        self.decoder_kernel = self.param("decoder_kernel", directions, (n, d))
        # The encoder starts as the decoder's transpose: each latent reads its own direction.
        scale = FREE_ROW_NORM if self.activation == "gated" else 1.0
        self.encoder_kernel = self.param("encoder_kernel", lambda _: scale * self.dictionary().T)
        self.encoder_bias = self.param("encoder_bias", nn.initializers.zeros, (n,))
        if self.activation == "batchtopk":
            self.threshold = self.param("threshold", nn.initializers.zeros, ())
        if self.activation == "jumprelu":
            start = lambda _, shape: jnp.full(shape, jnp.log(self.threshold_init))
            self.log_threshold = self.param("log_threshold", start, (n,))
        if self.activation == "gated":  # the magnitude path: exp(r) times the gate's h, its bias
            self.gate_scale = self.param("gate_scale", nn.initializers.zeros, (n,))
            self.magnitude_bias = self.param("magnitude_bias", nn.initializers.zeros, (n,))
        if self.is_mutable_collection(USAGE_COLLECTION) or self.has_variable(
            USAGE_COLLECTION, "since_fired"
        ):
            self.since_fired = self.variable(USAGE_COLLECTION, "since_fired", jnp.zeros, (n,))

    def dictionary(self) -> jax.Array:
        """W_dec [latents, input_dim]: each row a direction, of unit norm except for "relu"."""
        if self.activation == "relu":
            return self.decoder_kernel
        return _unit_rows(self.decoder_kernel)

    def pre_activations(self, x_BxD: jax.Array) -> jax.Array:
        """h = (x - b_pre) W_enc + b_enc."""
        centred_BxD, bias_L = self._encoder_inputs(x_BxD)
        return centred_BxD @ self.encoder_kernel + bias_L

    def _encoder_inputs(self, x_BxD: jax.Array) -> tuple[jax.Array, jax.Array]:
        """x - b_pre and b_enc, b_pre's gradient taken through the term
        -(b_pre - stop_gradient(b_pre)) W_enc of the bias, zero in value: a [1, L] x [L, D]
        product, where through x - b_pre it is the [B, L] x [L, D] product dh W_enc^T, as
        costly as the encoder's own (XLA does not sum over the batch first)."""
        b_pre, kernel = self.pre_bias, self.encoder_kernel
        frozen = jax.lax.stop_gradient(b_pre)
        return x_BxD - frozen, self.encoder_bias - (b_pre - frozen) @ kernel

    def sparsify(self, h_BxL: jax.Array, train: bool) -> jax.Array:
        """The latents f of pre-activations h; batchtopk in training keeps the batch's top."""
        kind = self.activation
        if kind == "relu":
            return nn.relu(h_BxL)
        if kind == "topk":
            return scatter(*top_k(h_BxL, self.k), self.latents)
        if kind == "batchtopk":
            if train:
                return batch_top_k(h_BxL, self.k)[0]
            return h_BxL * (h_BxL > self.threshold)
        if kind == "jumprelu":
            return jump_relu(h_BxL, jnp.exp(self.log_threshold), self.bandwidth)
        gate = h_BxL > 0
        magnitude = jnp.exp(self.gate_scale) * (h_BxL - self.encoder_bias) + self.magnitude_bias
        return gate * nn.relu(magnitude)

    def encode(self, x_BxD: jax.Array) -> Encoding:
        return Encoding(code=self.sparsify(self.pre_activations(x_BxD), train=False))

    def decode(self, f_BxL: jax.Array) -> jax.Array:
        return f_BxL @ self.dictionary() + self.pre_bias

    def __call__(self, x_BxD: jax.Array, *, train: bool = False) -> tuple[jax.Array, dict]:
        """The reconstruction and `aux`: the latents ("code"), the variant's loss terms (batch
        means: "l1", "l0", "auxk", "gate", "threshold") and the batch's statistics."""
        h = None if self.activation == "topk" else self.pre_activations(x_BxD)
        if self.activation == "topk":  # encoded, decoded, counted and tracked from the k it keeps
            centred_BxD, bias_L = self._encoder_inputs(x_BxD)
            raw, indices = encode_top_k(centred_BxD, self.encoder_kernel, bias_L, self.k)
            values = nn.relu(raw)
            f = scatter(values, indices, self.latents)  # unread in training: compiled away
            x_hat = sparse_decode(values, indices, self.dictionary()) + self.pre_bias
            kept = values
            fired = lambda: jnp.zeros(self.latents, bool).at[indices].max(values > 0)
        else:
            f = kept = self.sparsify(h, train)
            x_hat = self.decode(f)
            fired = lambda: jnp.any(f > 0, axis=0)
        terms = self._penalties(h, f)
        stats = reconstruction_stats(x_BxD, x_hat, kept, self.variance)
        if self.activation == "gated":
            terms["gate"] = self._gate_rebuild(x_BxD, h)
        if train and self.activation == "batchtopk":
            terms["threshold"] = self._threshold_assignment(h)
        tracking = train and self.is_mutable_collection(USAGE_COLLECTION)
        if tracking and not self.is_initializing():
            dead_L = self.since_fired.value >= self.dead_after
            stats["dead_fraction"] = jnp.mean(dead_L)
            if self.activation in ("topk", "batchtopk"):
                terms["auxk"] = self._auxk(x_BxD, x_hat, dead_L)
            self.since_fired.value = jnp.where(fired(), 0.0, self.since_fired.value + len(x_BxD))
        return x_hat, {"code": f, "terms": terms, "stats": stats}

    def _penalties(self, h_BxL: jax.Array, f_BxL: jax.Array) -> dict:
        """"l1": sum_i f_i |d_i| per vector (relu; gated's on the gate's ReLU(h), its rows unit);
        "l0": the latents firing per vector (jumprelu), with straight-through threshold
        gradients."""
        if self.activation == "relu":
            norms_L = jnp.linalg.norm(self.decoder_kernel, axis=-1)
            return {"l1": jnp.mean(f_BxL @ norms_L)}
        if self.activation == "gated":
            return {"l1": jnp.mean(jnp.sum(nn.relu(h_BxL), axis=-1))}
        if self.activation == "jumprelu":
            threshold = jnp.exp(self.log_threshold)
            return {"l0": jnp.mean(jnp.sum(step(h_BxL, threshold, self.bandwidth), axis=-1))}
        return {}

    def _gate_rebuild(self, x_BxD: jax.Array, h_BxL: jax.Array) -> jax.Array:
        """|x - (ReLU(h) W_dec + b_pre)|^2 per vector, the decoder frozen: it trains the gate's
        directions to rebuild x on their own, so the gate cannot shrink them to save L1."""
        frozen = jax.lax.stop_gradient
        x_hat = nn.relu(h_BxL) @ frozen(self.dictionary()) + frozen(self.pre_bias)
        return jnp.mean(jnp.sum(jnp.square(x_BxD - x_hat), axis=-1))

    def _auxk(self, x_BxD, x_hat_BxD, dead_L) -> jax.Array:
        """|e - e_hat|^2 per vector: the residual e = x - x_hat (no gradient) rebuilt, without
        the bias, from the positive pre-activations of the dead latents; 0 with none dead, and
        then not computed.

        While at most `aux_k` latents are dead this is Gao et al.'s AuxK exactly (its top
        `aux_k` of the dead are all of them); beyond, the `aux_k` longest dead take part, the same
        for every vector, where the paper takes each vector's top `aux_k` of all the dead: its
        top-k over every latent of every vector trained the 16,384-latent dictionary at 60% of
        the speed without it. The chosen latents' encoder columns and directions are taken by a
        product with their one-hot rows [aux_k, L], not gathered, so a dictionary split over
        devices stays split (each device sums over its own latents): four [aux_k, L] x [L, D]
        products with their gradients, a sixth of the work of rebuilding from every latent
        masked (three [B, L] x [L, D]) at aux_k = 512 and B = 4,096."""
        aux_k = min(self.aux_k, self.latents)
        # Most samples since firing first; the live sort last, and are left out.
        longest_dead = jnp.argsort(-jnp.where(dead_L, self.since_fired.value, -1.0))[:aux_k]
        one_hot_KxL = jax.nn.one_hot(longest_dead, self.latents) * dead_L[longest_dead, None]
        e = jax.lax.stop_gradient(x_BxD - x_hat_BxD)

        def rebuild(encoder_kernel, encoder_bias, dictionary):
            h_BxK = (x_BxD - self.pre_bias) @ (encoder_kernel @ one_hot_KxL.T)
            h_BxK = h_BxK + one_hot_KxL @ encoder_bias
            e_hat = nn.relu(h_BxK) @ (one_hot_KxL @ dictionary)
            return jnp.mean(jnp.sum(jnp.square(e - e_hat), axis=-1))

        none_dead = lambda *_: jnp.zeros((), x_BxD.dtype)
        return jax.lax.cond(
            jnp.any(dead_L), rebuild, none_dead,
            self.encoder_kernel, self.encoder_bias, self.dictionary(),
        )  # fmt: skip

    def _threshold_assignment(self, h_BxL: jax.Array) -> jax.Array:
        """0.5 (theta - target)^2, whose gradient, applied at rate 1 (`ASSIGNED`), sets theta to
        its running mean of the batches' smallest kept activation (the first batch's at first)."""
        smallest = jax.lax.stop_gradient(batch_top_k(h_BxL, self.k)[1])
        theta = self.threshold
        decay = self.threshold_decay
        target = jnp.where(theta > 0, decay * theta + (1 - decay) * smallest, smallest)
        return 0.5 * jnp.square(theta - jax.lax.stop_gradient(target))


def _unit_rows(v: jax.Array) -> jax.Array:
    return v / jnp.linalg.norm(v, axis=-1, keepdims=True)
