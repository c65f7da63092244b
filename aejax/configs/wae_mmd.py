"""WAE-MMD (Tolstikhin et al., 2018): a deterministic MLP AE 784-256-256-8 whose codes are
pulled towards N(0, I) by the MMD with the inverse multiquadratic kernel (C = 2 x 8), weight
10; Bernoulli nats per image. Prior draws decode to samples (samples.png).

aejax train --config wae_mmd --workdir runs/wae_mmd
"""

from aejax import configs


def get_config():
    config = configs.get("mlp")
    config.model.encoder_widths = (256, 256, 8)
    config.model.code_activation = "linear"  # codes live where N(0, I) does
    config.model.prior_match = "mmd"
    config.model.mmd_kernel = "imq"  # "rbf": exp(-|a - b|^2 / C), config wae_mmd_rbf
    config.loss.reduction = "sum"
    config.loss.mmd_weight = 10.0
    config.train.batch_size = 100
    return config
