"""A JumpReLU sparse autoencoder ("Jumping Ahead: Improving Reconstruction Fidelity with JumpReLU Sparse Autoencoders", Rajamanoharan et al., 2024): learnt per-latent thresholds and an L0 penalty.

aejax train --config sae_jumprelu --workdir runs/sae_jumprelu
"""

from aejax import configs
from aejax.models import sae


def get_config():
    config = configs.get("sae_topk")
    config.model.bottleneck = "jumprelu"
    config.loss.sparsity_weight = sae.DEFAULTS["jumprelu"]["loss.sparsity_weight"]  # lambda of L0
    return config
