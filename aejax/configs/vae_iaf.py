"""`iwae.py`'s VAE whose posterior draw passes through 2 inverse autoregressive flow steps
("Improved Variational Inference with Inverse Autoregressive Flow", Kingma et al., 2016), each a
MADE of two hidden layers of 128 units giving the shift and gate of every latent from the
latents before it, the order reversed between steps; shared by every image, as Pythae's VAE_IAF
(2 MADE blocks of 128 units) has them. Its KL is the sampled log q(z|x) - log p(z).

aejax train --config vae_iaf --workdir runs/vae_iaf
"""

from aejax import configs


def get_config():
    config = configs.get("iwae")
    config.model.flow = "iaf"
    config.model.flow_layers = 2
    return config
