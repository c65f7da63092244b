"""beta-TCVAE (Chen et al., 2018): the MLP VAE 784-500-500-10 whose objective weighs the
total correlation of the aggregate posterior by beta = 6: recon + KL + (beta - 1) TC, the TC
estimated by minibatch-weighted sampling over the training set's size.

aejax train --config betatcvae --workdir runs/betatcvae
"""

from aejax import configs


def get_config():
    config = configs.get("vae")
    config.model.latent_dim = 10
    config.model.total_correlation = True  # logs "tc"; dataset_size is set from the data
    config.loss.tc_weight = 5.0  # beta - 1
    config.train.epochs = 50
    return config
