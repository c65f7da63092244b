"""The deep symmetric AE: 784-300-150-300-784, ELU, variance-scaling init, L2 weight penalty.

aejax train --config stacked --workdir runs/stacked
"""

import ml_collections

from aejax.configs import fields


def get_config() -> ml_collections.ConfigDict:
    config = fields.base()
    config.model.name = "mlp"
    config.model.encoder_widths = (300, 150)  # the decoder mirrors them: 150-300-784
    config.model.activation = "elu"
    config.model.code_activation = "elu"
    config.model.kernel_init = "he_normal"  # variance_scaling(2.0, "fan_in", "truncated_normal")
    config.model.image_shape = (28, 28, 1)
    config.loss.likelihood = "bernoulli"  # sigmoid output, BCE
    # Nats per image: against a per-pixel mean, 1e-3 * sum(w^2) (about 3 at init) would
    # outweigh the reconstruction (about 0.7) and mostly shrink the weights.
    config.loss.reduction = "sum"
    config.loss.regularizers.l2 = ml_collections.ConfigDict()
    config.loss.regularizers.l2.weight = 1e-3  # adds 1e-3 * sum of squared kernels (not biases)
    config.train.batch_size = 200
    config.train.epochs = 30
    return config
