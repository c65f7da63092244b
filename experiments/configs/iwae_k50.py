"""The IWAE of Burda et al. (2016) with k = 50 importance samples: `iwae.py` trained on the
importance-weighted bound instead of the ELBO.

aejax train --config experiments/configs/iwae_k50.py --workdir runs/iwae_k50
"""

from pathlib import Path

from aejax import config as aejax_config


def get_config():
    config = aejax_config.load(Path(__file__).with_name("iwae.py"))
    config.loss.iwae_samples = 50
    return config
