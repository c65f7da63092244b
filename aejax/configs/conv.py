"""The convolutional AE: conv16-pool-conv8-pool-conv8-pool (a 4x4x8 code), nearest-upsampling
decoder 4-8-16-14-28 with conv8-conv8-conv16, a 3x3 convolution to logits, BCE, batch 200.

aejax train --config conv --workdir runs/conv
"""

import ml_collections

from aejax.configs import fields


def get_config() -> ml_collections.ConfigDict:
    config = fields.base()
    config.model.name = "conv"
    config.model.encoder_features = (16, 8, 8)  # each conv3x3-relu then 2x2 max pooling
    config.model.decoder_features = (8, 8, 16)  # each conv3x3-relu then 2x nearest upsampling
    # "transpose": stride-2 transposed conv3x3-relu layers instead, 4-7-14-28 (conv_transpose.py)
    config.model.upsampling = "nearest"
    config.model.image_shape = (28, 28, 1)
    config.loss.likelihood = "bernoulli"  # sigmoid output, BCE
    config.loss.reduction = "mean"  # per-pixel BCE, the figure Keras tutorials report
    config.train.batch_size = 200
    config.train.epochs = 20
    # Single dispatched steps: XLA:CPU ran these convolutions 2.5-4x slower inside lax.scan.
    config.train.chunk = 1
    return config
