"""The convolutional AE with a learned-upsampling decoder: stride-2 transposed 3x3 convolutions
retrace the encoder's sides 4-7-14-28 (conv8-conv8-conv16), then a 3x3 convolution to logits.

aejax train --config conv_transpose --workdir runs/conv_transpose
"""

import ml_collections

from aejax import configs


def get_config() -> ml_collections.ConfigDict:
    config = configs.get("conv")
    config.model.upsampling = "transpose"
    return config
