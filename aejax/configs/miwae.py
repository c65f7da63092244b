"""MIWAE(8, 8): `iwae.py` trained on the mean of 8 importance-weighted bounds of 8 samples each,
64 posterior samples per image split as "Tighter Variational Bounds are Not Necessarily Better"
(Rainforth et al., 2018) splits them: its encoder's gradient is less noisy than under one bound
of 64.

aejax train --config miwae --workdir runs/miwae
"""

from aejax import configs


def get_config():
    config = configs.get("iwae")
    config.loss.iwae_samples = 8
    config.loss.iwae_groups = 8
    return config
