"""`iwae.py`'s VAE whose posterior draw passes through 10 planar flow steps ("Variational
Inference with Normalizing Flows", Rezende and Mohamed, 2015): z_10 = f_10(... f_1(z_0)), its
density the gaussian's less each step's log |det|; the steps' parameters are shared by every
image, as in Pythae's VAE_LinNF. Its KL is the sampled log q(z|x) - log p(z).

aejax train --config vae_planar --workdir runs/vae_planar
"""

from aejax import configs


def get_config():
    config = configs.get("iwae")
    config.model.flow = "planar"
    config.model.flow_layers = 10
    return config
