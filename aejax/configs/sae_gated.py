"""A gated sparse autoencoder ("Improving Dictionary Learning with Gated Sparse Autoencoders", Rajamanoharan et al., 2024): a gate that picks the latents, a magnitude path that sizes them, L1 on the gate.

aejax train --config sae_gated --workdir runs/sae_gated
"""

from aejax import configs
from aejax.models import sae


def get_config():
    config = configs.get("sae_topk")
    config.model.bottleneck = "gated"
    config.loss.sparsity_weight = sae.DEFAULTS["gated"]["loss.sparsity_weight"]  # lambda of L1
    return config
