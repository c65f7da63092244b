"""The Hamiltonian VAE ("Hamiltonian Variational Auto-Encoder", Caterini et al., 2018) on
`iwae.py`'s VAE: the posterior's draw and a gaussian momentum take 3 tempered leapfrog steps along
the gradient of log p(x, z) (Pythae's HVAE defaults: 3 steps, beta_0 = 0.3), the step size and
beta_0 learned. Its KL is the sampled one of the extended space, log q(z_0|x) + log N(gamma) -
log p(z_K) - log N(rho_K); a step costs about four decoder passes and their gradients.

aejax train --config hvae --workdir runs/hvae
"""

from aejax import configs


def get_config():
    config = configs.get("iwae")
    config.model.leapfrog_steps = 3
    config.model.leapfrog_step_size = 0.01  # where the learned step size starts
    config.model.tempering = 0.3  # where the learned beta_0 starts
    config.model.likelihood = config.loss.likelihood  # the potential's: the loss's
    return config
