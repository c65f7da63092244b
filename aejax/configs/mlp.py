"""The shallow undercomplete AE of "Building Autoencoders in Keras": 784-32-784, ReLU code, sigmoid output, BCE, batch 200.

aejax train --config mlp --workdir runs/mlp
"""

import ml_collections

from aejax.configs import fields


def get_config() -> ml_collections.ConfigDict:
    config = fields.base()
    config.model.name = "mlp"
    config.model.encoder_widths = (32,)  # hidden widths then the code; the decoder mirrors them
    config.model.activation = "relu"
    config.model.code_activation = "relu"
    config.model.kernel_init = "glorot_uniform"  # Keras's Dense default, as in the tutorial
    config.model.image_shape = (28, 28, 1)
    config.loss.likelihood = "bernoulli"  # sigmoid output, BCE
    config.loss.reduction = "mean"  # per-pixel BCE, the figure Keras tutorials report
    config.train.batch_size = 200
    config.train.epochs = 50
    return config
