"""The textbook MLP VAE: 784-500-500-20, ELU, Bernoulli likelihood, on mnist5k.

aejax train --config vae --workdir runs/vae
"""

import ml_collections

from aejax.configs import fields


def get_config() -> ml_collections.ConfigDict:
    config = fields.base()
    config.model.name = "vae"
    config.model.encoder_widths = (500, 500)  # the decoder mirrors them
    config.model.latent_dim = 20
    config.model.activation = "elu"
    config.model.learned_variance = False  # True: a gaussian likelihood learns its variance
    # The posterior's second head: its log-variance, or "sigma", its standard deviation with
    # the KL's log(sigma^2 + 1e-10) (experiments/vae_posterior_scale.py compares the two).
    config.model.posterior_scale = "logvar"
    config.model.image_shape = (28, 28, 1)
    config.loss.likelihood = "bernoulli"  # BCE on logits
    config.loss.reduction = "sum"  # nats per image, so the loss is the negative ELBO
    config.loss.kl_weight = 1.0
    config.train.batch_size = 150
    config.train.epochs = 100  # test loss is flat from about epoch 80 on mnist5k
    return config
