"""The stacked AE with tied weights: the decoder's kernels are the encoder's, transposed.

One kernel per layer pair is used twice (each side keeps its own biases), which halves the
kernel parameters: 280,200 instead of 560,400.

aejax train --config experiments/configs/tied.py --workdir runs/tied
"""

from pathlib import Path

import ml_collections

from aejax import config as aejax_config


def get_config() -> ml_collections.ConfigDict:
    config = aejax_config.load(Path(__file__).with_name("stacked.py"))
    config.model.name = "tied"
    return config
