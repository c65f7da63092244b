"""The convolutional AE with a learned-upsampling decoder: stride-2 transposed 3x3 convolutions
retrace the encoder's sides 4-7-14-28 (conv8-conv8-conv16), then a 3x3 convolution to logits.

aejax train --config experiments/configs/conv_transpose.py --workdir runs/conv_transpose
"""

from pathlib import Path

import ml_collections

from aejax import config as aejax_config


def get_config() -> ml_collections.ConfigDict:
    config = aejax_config.load(Path(__file__).with_name("conv.py"))
    config.model.upsampling = "transpose"
    return config
