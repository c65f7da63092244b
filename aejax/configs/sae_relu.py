"""A ReLU sparse autoencoder with an L1 penalty ("Towards Monosemanticity", Bricken et al., 2023), each activation's L1 weighted by its direction's norm, the directions free.

aejax train --config sae_relu --workdir runs/sae_relu
"""

from aejax import configs
from aejax.models import sae


def get_config():
    config = configs.get("sae_topk")
    config.model.bottleneck = "relu"
    config.loss.sparsity_weight = sae.DEFAULTS["relu"]["loss.sparsity_weight"]  # lambda of L1
    return config
