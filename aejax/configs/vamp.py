"""The VampPrior ("VAE with a VampPrior", Tomczak and Welling, 2018) on `iwae.py`'s VAE: the prior
is the mixture of the encoder's posteriors of 50 learned pseudo-inputs (Pythae's default count;
the paper's MNIST runs use 500), each pseudo-image started near 0.05 and kept in [0, 1]. Its KL
is the sampled log q(z|x) - log p(z); samples are decoded draws of the mixture.

aejax train --config vamp --workdir runs/vamp
"""

from aejax import configs


def get_config():
    config = configs.get("iwae")
    config.model.prior = "vamp"
    config.model.pseudo_inputs = 50
    return config
