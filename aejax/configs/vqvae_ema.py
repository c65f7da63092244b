"""VQ-VAE with its codebook kept by exponential moving averages of the vectors assigned to each
entry (decay 0.99, the paper's appendix) instead of a loss term; otherwise config vqvae.

aejax train --config vqvae_ema --workdir runs/vqvae_ema
"""

from aejax import configs


def get_config():
    config = configs.get("vqvae")
    config.model.codebook = "ema"  # counts and sums in the train state's "vq_ema" collection
    config.model.ema_decay = 0.99
    return config
