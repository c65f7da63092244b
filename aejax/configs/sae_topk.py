"""A TopK sparse autoencoder ("Scaling and evaluating sparse autoencoders", Gao et al., 2024): a dictionary 16x as wide as its vectors, the 32 largest latents kept per vector, AuxK on dead latents.

Its vectors are the 1,024 penultimate activations of the `fidelity_features` classifier on
`data.name`, trained once in runs/fidelity_features_<dataset> when absent; set
data.activations to another run's workdir (and data.layer) to read another network.

aejax train --config sae_topk --workdir runs/sae_topk
"""

import ml_collections

from aejax.configs import fields


def get_config() -> ml_collections.ConfigDict:
    config = fields.base()
    config.data.activations = "fidelity_features"
    fields.sae_model(config, "topk")
    config.loss.likelihood = "gaussian"  # squared error, no variance
    config.loss.reduction = "sum"  # |x - x_hat|^2 per vector, the papers' loss
    config.loss.sparsity_weight = 0.0  # relu, gated: L1; jumprelu: L0. TopK needs none
    config.loss.auxk_weight = 1 / 32  # alpha of the AuxK loss, Gao et al.'s
    config.opt.lr = 1e-3
    config.train.batch_size = 500
    config.train.epochs = 20
    config.train.chunk = 8
    return config
