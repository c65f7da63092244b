"""The denoising AE: the stacked AE fed gaussian-corrupted images, asked for the clean ones.

The corruption is drawn inside the compiled step from the step's own "corruption" key, and
evaluation sees clean images unless `loss.corruption.at_eval` is set.
denoising_masking.py and denoising_salt_pepper.py swap the corruption.

aejax train --config denoising --workdir runs/denoising
"""

import ml_collections

from aejax import configs


def get_config() -> ml_collections.ConfigDict:
    config = configs.get("stacked")
    config.loss.corruption.name = "gaussian"  # gaussian, masking, salt_and_pepper
    config.loss.corruption.factor = 0.5  # x + 0.5 * N(0, 1)
    config.loss.corruption.clip = True  # back to [0, 1]; False leaves the noisy pixels as drawn
    config.loss.corruption.at_eval = False  # True: test metrics on corrupted inputs too
    return config
