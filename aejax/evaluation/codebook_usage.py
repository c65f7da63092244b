"""How much of its codebook a quantised code uses on the test set, each epoch: the fraction of
entries the test images choose, per level of a residual codebook, and each entry's share for
TensorBoard. A batch's perplexity, logged by the step, shows how evenly a batch spreads; this
shows which entries the whole test set never reaches."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from aejax import compiled
from aejax.data.dataset import as_float
from aejax.evaluation import inference


class CodebookUsage:
    """`CodebookUsage(model, test_images)(params) -> (scalars, histograms)`: `test/codebook_used` (then
    `test/codebook_used2`, ... for a residual codebook's later levels) and `test/code_share`,
    each used entry's fraction of the test set's code vectors (its first level's)."""

    def __init__(self, model: nn.Module, test_images):
        self.images = test_images
        num_codes = model.bottleneck.num_codes

        def counts(params, x):  # [levels, K]: the indices never leave the device
            indices = model.apply({"params": params}, x, method="encode").indices
            levels_MxL = indices.reshape(-1, indices.shape[-1] if indices.ndim == 3 else 1)
            return jax.vmap(lambda column: jnp.bincount(column, length=num_codes))(levels_MxL.T)

        self._counts = compiled.jit(lambda params, x: counts(params, as_float(x)))

    def __call__(self, params) -> tuple[dict, dict]:
        n, batch = len(self.images), inference.BATCH
        counts_LxK = np.asarray(
            sum(self._counts(params, self.images[i : i + batch]) for i in range(0, n, batch))
        )
        scalars = {
            f"test/codebook_used{level + 1 if level else ''}": float(np.mean(counts_L > 0))
            for level, counts_L in enumerate(counts_LxK)
        }
        share_K = counts_LxK[0] / counts_LxK[0].sum()
        return scalars, {"test/code_share": share_K[share_K > 0]}
