"""The denoising AE with salt-and-pepper noise: 20% of the pixels set to 0 or 1.

aejax train --config experiments/configs/denoising_salt_pepper.py --workdir runs/denoising_sp
"""

from pathlib import Path

import ml_collections

from aejax import config as aejax_config


def get_config() -> ml_collections.ConfigDict:
    config = aejax_config.load(Path(__file__).with_name("denoising.py"))
    config.loss.corruption = ml_collections.ConfigDict()
    config.loss.corruption.name = "salt_and_pepper"
    config.loss.corruption.fraction = 0.2  # of the pixels, each set to 0 or 1 with even odds
    config.loss.corruption.at_eval = False
    return config
