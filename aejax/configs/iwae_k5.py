"""The IWAE of Burda et al. (2016) with k = 5 importance samples: `iwae.py` trained on the
importance-weighted bound instead of the ELBO.

aejax train --config iwae_k5 --workdir runs/iwae_k5
"""

from aejax import configs


def get_config():
    config = configs.get("iwae")
    config.loss.iwae_samples = 5
    return config
