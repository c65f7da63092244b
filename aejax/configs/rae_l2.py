"""RAE-L2 ("From Variational to Deterministic Autoencoders", Ghosh et al., 2020): a deterministic
MLP AE 784-256-256-16 with a linear code, its codes kept near the origin by 0.5 |z|^2 and its
decoder smoothed by an L2 penalty on its kernels, in place of a VAE's noise and KL; Bernoulli
nats per image. It has no prior: it samples from a Gaussian mixture fitted to its codes after
training (`aejax sampler`, `Run.fit_sampler`). The weights are those of Pythae's reproduced
MNIST RAE-L2: 1e-6 on the code, and decoder weight decay 1e-3 (Adam's coupled decay, the
gradient of 0.5 x 1e-3 |theta|^2, so 5e-4 here).

aejax sampler --config rae_l2 --workdir runs/rae_l2
"""

import ml_collections

from aejax import configs


def get_config():
    config = configs.get("mlp")
    config.model.encoder_widths = (256, 256, 16)
    config.model.code_activation = "linear"
    config.loss.reduction = "sum"
    config.train.batch_size = 100
    config.loss.regularizers = ml_collections.ConfigDict()
    config.loss.regularizers.code_l2 = ml_collections.ConfigDict({"weight": 1e-6})
    config.loss.regularizers.decoder_l2 = ml_collections.ConfigDict({"weight": 5e-4})
    return config
