"""The denoising AE with masking noise: each pixel kept with probability 0.7, else zeroed.

aejax train --config experiments/configs/denoising_masking.py --workdir runs/denoising_masking
"""

from pathlib import Path

import ml_collections

from aejax import config as aejax_config


def get_config() -> ml_collections.ConfigDict:
    config = aejax_config.load(Path(__file__).with_name("denoising.py"))
    config.loss.corruption = ml_collections.ConfigDict()
    config.loss.corruption.name = "masking"
    config.loss.corruption.keep_prob = 0.7  # dropout's keep probability, without the rescaling
    config.loss.corruption.at_eval = False
    return config
