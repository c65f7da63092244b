"""The stacked AE with tied weights: the decoder's kernels are the encoder's, transposed.

One kernel per layer pair is used twice (each side keeps its own biases), which halves the
kernel parameters: 280,200 instead of 560,400.

aejax train --config tied --workdir runs/tied
"""

import ml_collections

from aejax import configs


def get_config() -> ml_collections.ConfigDict:
    config = configs.get("stacked")
    config.model.name = "tied"
    return config
