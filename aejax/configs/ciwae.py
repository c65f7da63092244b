"""CIWAE(0.5): `iwae.py` trained on 0.5 * ELBO + 0.5 * the importance-weighted bound of the same
64 posterior samples per image ("Tighter Variational Bounds are Not Necessarily Better",
Rainforth et al., 2018).

aejax train --config ciwae --workdir runs/ciwae
"""

from aejax import configs


def get_config():
    config = configs.get("iwae")
    config.loss.iwae_samples = 64
    config.loss.ciwae_beta = 0.5
    return config
