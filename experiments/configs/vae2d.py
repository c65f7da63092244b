"""The 2-D-latent VAE for latent maps: 784-512-2 ReLU, Bernoulli likelihood, batch 128, whose
run leaves `manifold.png` (decoder over gaussian quantiles) and `latent_scatter.png`.

aejax train --config experiments/configs/vae2d.py --workdir runs/vae2d
"""

from pathlib import Path

import ml_collections

from aejax import config as aejax_config


def get_config() -> ml_collections.ConfigDict:
    config = aejax_config.load(Path(__file__).with_name("vae.py"))
    config.model.encoder_widths = (512,)
    config.model.latent_dim = 2
    config.model.activation = "relu"
    config.train.batch_size = 128
    config.train.epochs = 50
    return config
