"""The sparse AE: 784-1000-784, sigmoid code, KL sparsity to a target rate of 0.1, BCE.

Wider than its input: the sparsity penalty, not the width, keeps it from copying.

aejax train --config sparse --workdir runs/sparse
"""

import ml_collections

from aejax.configs import fields


def get_config() -> ml_collections.ConfigDict:
    config = fields.base()
    config.model.name = "mlp"
    config.model.encoder_widths = (1000,)
    config.model.activation = "relu"  # unused with no hidden layer
    config.model.code_activation = "sigmoid"  # kl_sparsity needs a code in (0, 1)
    config.model.image_shape = (28, 28, 1)
    config.loss.likelihood = "bernoulli"  # sigmoid output, BCE
    # Per-pixel BCE against a KL summed over 1000 units: the KL rules until the rates reach
    # the target, and then reconstruction takes over (Geron's sparse AE, Hands-On ML ch. 15).
    config.loss.reduction = "mean"
    config.loss.regularizers.kl_sparsity = ml_collections.ConfigDict()
    config.loss.regularizers.kl_sparsity.weight = 0.2  # times sum_j KL(0.1 || batch mean of h_j)
    config.loss.regularizers.kl_sparsity.target = 0.1  # rho: the mean activation wanted per unit
    config.train.batch_size = 200
    config.train.epochs = 30
    return config
