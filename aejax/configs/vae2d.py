"""The 2-D-latent VAE for latent maps: 784-512-2 ReLU, Bernoulli likelihood, batch 128, whose
run leaves `manifold.png` (decoder over gaussian quantiles) and `latent_scatter.png`.

aejax train --config vae2d --workdir runs/vae2d
"""

import ml_collections

from aejax import configs


def get_config() -> ml_collections.ConfigDict:
    config = configs.get("vae")
    config.model.encoder_widths = (512,)
    config.model.latent_dim = 2
    config.model.activation = "relu"
    config.train.batch_size = 128
    config.train.epochs = 50
    return config
