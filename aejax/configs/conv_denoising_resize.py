"""The denoising conv AE of Udacity's "Convolutional Autoencoder" notebook: the `conv_denoising`
model (32-32-16 encoder, gaussian noise 0.5 clipped) whose decoder resizes to 7, 14, 28 before
its conv16, conv32, conv32, the last at 28x28.

aejax train --config conv_denoising_resize --workdir runs/conv_denoising_resize
"""

import ml_collections

from aejax import configs


def get_config() -> ml_collections.ConfigDict:
    config = configs.get("conv_denoising")
    config.model.upsampling = "resize"  # resize to the encoder's sides 4-7-14-28, then conv
    return config
