"""The convolutional AE with the TensorFlow tutorials' decoder: the `conv` encoder (a 4x4x8
code), then nearest resize to 7, conv8, resize to 14, conv8, resize to 28, conv16 at 28x28, a
3x3 convolution to logits; BCE, batch 200. The same parameters as `conv`, on another path.

aejax train --config experiments/configs/conv_resize.py --workdir runs/conv_resize
"""

from pathlib import Path

import ml_collections

from aejax import config as aejax_config


def get_config() -> ml_collections.ConfigDict:
    config = aejax_config.load(Path(__file__).with_name("conv.py"))
    config.model.upsampling = "resize"  # resize to the encoder's sides 4-7-14-28, then conv
    return config
