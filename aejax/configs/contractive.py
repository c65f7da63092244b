"""The contractive AE: 784-64-784, sigmoid code, BCE, plus the encoder Jacobian's norm.

The penalty is ||dh/dx||_F^2 per image, exact, in the closed form of one sigmoid layer:
sum_j (h_j (1 - h_j))^2 sum_i W_ij^2.

aejax train --config contractive --workdir runs/contractive
"""

import ml_collections

from aejax.configs import fields


def get_config() -> ml_collections.ConfigDict:
    config = fields.base()
    config.model.name = "mlp"
    config.model.encoder_widths = (64,)  # one layer: the closed form needs it
    config.model.activation = "relu"  # unused with no hidden layer
    config.model.code_activation = "sigmoid"
    config.model.image_shape = (28, 28, 1)
    config.loss.likelihood = "bernoulli"  # sigmoid output, BCE
    config.loss.reduction = "sum"  # nats per image, the scale the penalty is weighed against
    config.loss.regularizers.contractive = ml_collections.ConfigDict()
    # Times ||dh/dx||_F^2 per image. On mnist5k after 30 epochs, 1.0 leaves a third of the
    # unpenalised norm (1.5 vs 4.4) for 2% more nats (166 vs 162); 10 a ninth for 7%.
    config.loss.regularizers.contractive.weight = 1.0
    config.train.batch_size = 200
    config.train.epochs = 30
    return config
