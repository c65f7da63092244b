"""The adversarial autoencoder (Makhzani et al., 2016): a deterministic MLP AE 784-256-256-8
and a discriminator 8-64-64-1 telling its codes from draws of N(0, I). The discriminator has
its own Adam (opt.parts.discriminator); one update applies both optimisers, each side's
gradient holding only its own terms ("discriminator"; reconstruction plus "adversarial").

aejax train --config aae --workdir runs/aae
"""

import ml_collections

from aejax import configs


def get_config():
    config = configs.get("mlp")
    config.model.encoder_widths = (256, 256, 8)
    config.model.code_activation = "linear"
    config.model.prior_match = "adversarial"
    config.model.discriminator_widths = (64, 64)
    config.opt.parts.discriminator = ml_collections.ConfigDict({"name": "adam", "lr": 1e-3})
    config.loss.reduction = "sum"
    config.loss.adversarial_weight = 1.0
    config.train.batch_size = 100
    return config
