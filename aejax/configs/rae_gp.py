"""RAE-GP ("From Variational to Deterministic Autoencoders", Ghosh et al., 2020): `rae_l2`'s
784-256-256-16 MLP AE with its decoder smoothed by a gradient penalty in place of weight decay:
|d sum(decoder mean image) / dz|^2 at each code, as Pythae computes it, beside 0.5 |z|^2 on the
codes; Bernoulli nats per image. It samples from a Gaussian mixture fitted to its codes after
training (`aejax sampler`, `Run.fit_sampler`). The weights are those of Pythae's reproduced
MNIST RAE-GP: 1e-3 on the code, 1e-6 on the gradient.

aejax sampler --config rae_gp --workdir runs/rae_gp
"""

import ml_collections

from aejax import configs


def get_config():
    config = configs.get("rae_l2")
    config.loss.regularizers = ml_collections.ConfigDict()
    config.loss.regularizers.code_l2 = ml_collections.ConfigDict({"weight": 1e-3})
    config.loss.regularizers.decoder_gradient = ml_collections.ConfigDict({"weight": 1e-6})
    return config
