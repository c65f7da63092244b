"""InfoVAE ("InfoVAE: Balancing Learning and Inference in Variational Autoencoders", Zhao et al.,
2019): the textbook `vae` whose loss adds the MMD (inverse multiquadratic kernel, C = 2 x 20)
between its batch's posterior samples and as many N(0, I) draws. Its objective is
recon + (1 - alpha) KL + (alpha + lambda - 1) MMD; here alpha = 0 (the whole KL) and
lambda = 11, an MMD weight of 10, the weight `wae_mmd` gives the same kernel.

aejax train --config infovae --workdir runs/infovae
"""

from aejax import configs


def get_config():
    config = configs.get("vae")
    config.model.prior_match = "mmd"  # a gaussian's: the aggregate posterior to N(0, I)
    config.model.mmd_kernel = "imq"
    config.loss.kl_weight = 1.0  # 1 - alpha
    config.loss.mmd_weight = 10.0  # alpha + lambda - 1
    return config
