"""A JumpReLU sparse autoencoder ("Jumping Ahead: Improving Reconstruction Fidelity with JumpReLU Sparse Autoencoders", Rajamanoharan et al., 2024): learnt per-latent thresholds and an L0 penalty.

aejax train --config sae_jumprelu --workdir runs/sae_jumprelu
"""

from aejax import configs
from aejax.models import sae


def get_config():
    config = configs.get("sae_topk")
    config.model.bottleneck = "jumprelu"
    config.loss.sparsity_weight = sae.DEFAULTS["jumprelu"]["loss.sparsity_weight"]  # lambda of L0
    # The paper's 0.001 for both left L0 at 7,276 of 16,384 after 3 epochs of mnist5k (FVU
    # 2.37): on vectors of mean squared norm D the pre-activations are of order 1, and a log
    # threshold moving ~lr per step takes thousands of steps to climb from 0.001. With these,
    # L0 23 and FVU 0.23 after 5 epochs.
    config.model.threshold_init = 1.0
    config.model.bandwidth = 0.1
    return config
