"""A BatchTopK sparse autoencoder ("BatchTopK Sparse Autoencoders", Bussmann et al., 2024): sae_topk with the 32 x B largest latents kept over each batch of B, and a threshold for one vector at a time.

aejax train --config sae_batchtopk --workdir runs/sae_batchtopk
"""

from aejax import configs


def get_config():
    config = configs.get("sae_topk")
    config.model.bottleneck = "batchtopk"
    return config
