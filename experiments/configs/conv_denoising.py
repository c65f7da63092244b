"""The deeper convolutional AE on noisy input: 32-32-16 encoder, 16-32-32 decoder, trained on
images with gaussian noise (factor 0.5, clipped to [0, 1]) to give back the clean ones.

aejax train --config experiments/configs/conv_denoising.py --workdir runs/conv_denoising
"""

from pathlib import Path

import ml_collections

from aejax import config as aejax_config


def get_config() -> ml_collections.ConfigDict:
    config = aejax_config.load(Path(__file__).with_name("conv.py"))
    config.model.encoder_features = (32, 32, 16)
    config.model.decoder_features = (16, 32, 32)
    config.loss.corruption = ml_collections.ConfigDict()
    config.loss.corruption.name = "gaussian"
    config.loss.corruption.factor = 0.5  # x + 0.5 * N(0, 1)
    config.loss.corruption.clip = True  # back to [0, 1]; False leaves the noisy pixels as drawn
    config.loss.corruption.at_eval = False
    return config
