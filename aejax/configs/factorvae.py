"""FactorVAE ("Disentangling by Factorising", Kim and Mnih, 2018) on `betatcvae.py`'s VAE
784-500-500-10: the total correlation is estimated by a discriminator 10-1000-1000-1 telling the
batch's codes from the same codes with each latent shuffled across the batch, as the logit
log D / (1 - D) on the codes; gamma = 5 weighs it beside the ELBO, the TC weight beta-TCVAE's
beta = 6 gives (its KL holds one TC already). The discriminator has its own Adam at Kim and
Mnih's rate, 1e-4 (opt.parts.discriminator), in the one update the adversarial AE uses.

aejax train --config factorvae --workdir runs/factorvae
"""

import ml_collections

from aejax import configs


def get_config():
    config = configs.get("betatcvae")
    config.model.tc_estimator = "discriminator"
    config.model.discriminator_widths = (1000, 1000)
    config.opt.parts.discriminator = ml_collections.ConfigDict({"name": "adam", "lr": 1e-4})
    config.loss.tc_weight = 5.0  # gamma
    return config
