"""The deeper convolutional AE on noisy input: 32-32-16 encoder, 16-32-32 decoder, trained on
images with gaussian noise (factor 0.5, clipped to [0, 1]) to give back the clean ones.

aejax train --config conv_denoising --workdir runs/conv_denoising
"""

import ml_collections

from aejax import configs


def get_config() -> ml_collections.ConfigDict:
    config = configs.get("conv")
    config.model.encoder_features = (32, 32, 16)
    config.model.decoder_features = (16, 32, 32)
    config.loss.corruption.name = "gaussian"
    config.loss.corruption.factor = 0.5  # x + 0.5 * N(0, 1)
    config.loss.corruption.clip = True  # back to [0, 1]; False leaves the noisy pixels as drawn
    config.loss.corruption.at_eval = False
    return config
