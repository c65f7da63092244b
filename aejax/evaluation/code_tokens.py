"""A causal transformer over a run's binned codes: an ex-post sampler for any autoencoder with a
decoder, the learned prior of `vqvae_prior` carried from codebook indices to continuous codes.

Each unit of the code is cut into BINS bins holding equal shares of the training codes (its
quantiles), so a code becomes a sequence of D tokens, one per unit, and the transformer
(`code_prior.TokenPrior`) models p(t) = prod_d p(t_d | t_<d). It trains by the one loop as an
aejax run in the folder `transformer` of the run's workdir. A draw takes each unit's bin
ancestrally and a value uniform inside it: a density piecewise constant along each unit given
the units before it, which follows codes a few gaussians fit badly (a ReLU's exact zeros are
bins of their own, drawn as zeros). Drawing costs D positions of the transformer, each reading
the cache of the ones before.
"""

import json
from pathlib import Path

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from aejax.configs import fields
from aejax.evaluation.code_vae import train_beside
from aejax.models import code_prior

FOLDER = Path("transformer")  # the token prior's workdir, inside the run's
FILE = "bins.npz"  # each unit's bin edges, and what they were taken of
BINS = 64
EPOCHS = 20
BATCH = 100


def bin_edges(codes_NxD: np.ndarray, bins: int = BINS) -> np.ndarray:
    """[D, bins + 1]: each unit's quantiles at 0, 1/bins, ..., 1 (its least and greatest code
    at the ends)."""
    return np.quantile(np.asarray(codes_NxD, np.float64), np.linspace(0, 1, bins + 1), axis=0).T


def tokens(codes_NxD: np.ndarray, edges_DxE: np.ndarray) -> np.ndarray:
    """[N, D] int32: the bin of each unit's code, the number of inner edges below it, so a value
    that many codes share (a ReLU's zero) takes the first of the empty-width bins at it."""
    columns = [
        np.searchsorted(inner_E, codes_N, side="left")
        for inner_E, codes_N in zip(edges_DxE[:, 1:-1], np.asarray(codes_NxD).T)
    ]
    return np.stack(columns, axis=1).astype(np.int32)


def values(tokens_NxD: jax.Array, edges_DxE: jax.Array, rng: jax.Array) -> jax.Array:
    """[N, D]: a value uniform inside each token's bin (its edge, for a bin of no width)."""
    units_D = jnp.arange(edges_DxE.shape[0])
    low, high = edges_DxE[units_D, tokens_NxD], edges_DxE[units_D, tokens_NxD + 1]
    return low + jax.random.uniform(rng, tokens_NxD.shape) * (high - low)


def config(code_units: int, bins: int, epochs: int, seed: int) -> ml_collections.ConfigDict:
    """The token prior's config: `vqvae_prior`'s transformer (2 layers, 64 wide, 4 heads) over
    sequences of `code_units` tokens of `bins` values, given as vectors."""
    config = fields.base()
    config.seed = seed
    config.data.normalize = "none"  # the vectors are token indices
    config.model.name = "token_prior"
    config.model.num_codes = bins
    config.model.length = code_units
    config.model.embed_dim = 64
    config.model.num_layers = 2
    config.model.num_heads = 4
    config.model.image_shape = (code_units,)
    config.loss.objective = "code_prior"  # each token's cross-entropy given those before it
    config.train.epochs = epochs
    config.train.batch_size = BATCH
    return config


def fit(codes_NxD: jax.Array, workdir: Path, meta: dict, epochs: int, seed: int) -> Path:
    """Trains the token prior on the bins of `codes_NxD`, with the edges and `meta` (what it
    was fitted to) beside it, in `workdir`/FOLDER. Returns its workdir."""
    codes = np.asarray(codes_NxD, np.float64)
    edges = bin_edges(codes)
    data = tokens(codes, edges).astype(np.float32)  # the loop's vectors; the model rounds back
    stage_config = config(codes.shape[1], BINS, epochs, seed)
    return train_beside(workdir, FOLDER / FILE, stage_config, data, {"edges": edges}, meta)


def load(workdir: Path) -> tuple[Path, np.ndarray, dict] | None:
    """The token prior's workdir, the bin edges and what it was fitted to; None if none was
    fitted (or its fit did not finish)."""
    stage = Path(workdir) / FOLDER
    if not (stage / FILE).exists():
        return None
    with np.load(stage / FILE) as saved:
        return stage, saved["edges"], json.loads(str(saved["meta"]))


def sample(prior: code_prior.TokenPrior, params, edges_DxE, rng: jax.Array, n: int) -> jax.Array:
    """`n` codes [n, D]: token sequences drawn from the trained `prior`, each token's value
    drawn inside its bin."""
    draw, place = jax.random.split(rng)
    return values(code_prior.sample_codes(prior, params, draw, n), jnp.asarray(edges_DxE), place)
