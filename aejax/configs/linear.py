"""The linear AE: 784-2-784, no activations, MSE. With its biases the optimum is PCA's: the
decoder spans the top two principal components of the centred images.

aejax train --config linear --workdir runs/linear
"""

import ml_collections

from aejax.configs import fields


def get_config() -> ml_collections.ConfigDict:
    config = fields.base()
    config.model.name = "mlp"
    config.model.encoder_widths = (2,)  # one dense layer each way: 784-2-784
    config.model.activation = "linear"  # unused with no hidden layer; linear all the same
    config.model.code_activation = "linear"
    # Balanced fan-in/fan-out scaling: lecun_normal would draw the decoder (fan-in 2) 20x
    # larger than the encoder, and training would first shrink both into the saddle at zero.
    config.model.kernel_init = "glorot_uniform"
    config.model.image_shape = (28, 28, 1)
    config.loss.likelihood = "gaussian"  # the logits are the reconstruction: MSE
    config.loss.reduction = "mean"  # per-pixel MSE, comparable with PCA's residual variance
    config.opt.lr = 1e-2  # at 1e-3 it takes hundreds of epochs to leave the mean-image plateau
    config.train.batch_size = 200
    config.train.epochs = 50
    return config
