"""The denoising AE with salt-and-pepper noise: 20% of the pixels set to 0 or 1.

aejax train --config denoising_salt_pepper --workdir runs/denoising_sp
"""

import ml_collections

from aejax import configs


def get_config() -> ml_collections.ConfigDict:
    config = configs.get("denoising")
    config.loss.corruption = ml_collections.ConfigDict()  # replaces the gaussian one
    config.loss.corruption.name = "salt_and_pepper"
    config.loss.corruption.fraction = 0.2  # of the pixels, each set to 0 or 1 with even odds
    config.loss.corruption.at_eval = False
    return config
