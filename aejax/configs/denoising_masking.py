"""The denoising AE with masking noise: each pixel kept with probability 0.7, else zeroed.

aejax train --config denoising_masking --workdir runs/denoising_masking
"""

import ml_collections

from aejax import configs


def get_config() -> ml_collections.ConfigDict:
    config = configs.get("denoising")
    config.loss.corruption = ml_collections.ConfigDict()  # replaces the gaussian one
    config.loss.corruption.name = "masking"
    config.loss.corruption.keep_prob = 0.7  # dropout's keep probability, without the rescaling
    config.loss.corruption.at_eval = False
    return config
