"""The IWAE of Burda et al. (2016) with k = 50 importance samples: `iwae.py` trained on the
importance-weighted bound instead of the ELBO.

aejax train --config iwae_k50 --workdir runs/iwae_k50
"""

from aejax import configs


def get_config():
    config = configs.get("iwae")
    config.loss.iwae_samples = 50
    return config
