"""The tutorials' two-pool convolutional AE: conv16-pool-conv8-pool to a 7x7x8 code,
conv8-up-conv16-up (7-14-28, no trim), a 3x3 convolution to logits (sigmoid), BCE, batch 200.

aejax train --config conv_twopool --workdir runs/conv_twopool
"""

import ml_collections

from aejax import configs


def get_config() -> ml_collections.ConfigDict:
    config = configs.get("conv")
    config.model.encoder_features = (16, 8)  # 28 -> 14 -> 7: a 7x7x8 code
    config.model.decoder_features = (8, 16)  # conv8 at 7x7, double, conv16 at 14x14, double
    return config
