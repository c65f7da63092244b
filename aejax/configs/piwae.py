"""PIWAE(8, 8): `iwae.py` whose decoder learns from the importance-weighted bound of 64 posterior
samples per image and whose encoder learns from MIWAE's mean of 8 bounds of 8 of them ("Tighter
Variational Bounds are Not Necessarily Better", Rainforth et al., 2018).

aejax train --config piwae --workdir runs/piwae
"""

from aejax import configs


def get_config():
    config = configs.get("miwae")
    config.loss.piwae = True
    return config
