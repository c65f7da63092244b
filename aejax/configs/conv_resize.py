"""The convolutional AE of Udacity's "Convolutional Autoencoder" notebook (TensorFlow 1): the
`conv` encoder (a 4x4x8 code), then nearest resize to 7, conv8, resize to 14, conv8, resize to
28, conv16 at 28x28, a 3x3 convolution to logits; BCE, batch 200. The same parameters as
`conv`, on another path.

aejax train --config conv_resize --workdir runs/conv_resize
"""

import ml_collections

from aejax import configs


def get_config() -> ml_collections.ConfigDict:
    config = configs.get("conv")
    config.model.upsampling = "resize"  # resize to the encoder's sides 4-7-14-28, then conv
    return config
