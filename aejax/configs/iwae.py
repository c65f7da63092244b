"""The architecture of Burda et al. (2016) as a VAE (k = 1): encoder 784-200-200 tanh to a 50-d
gaussian, decoder 50-200-200-784 tanh to Bernoulli logits whose output bias starts at the logits
of the training pixels' means; dynamically binarised data, Adam, batch 20.

aejax train --config iwae --workdir runs/iwae
python experiments/iwae_protocol.py --config iwae --dataset mnist --epochs 3280  # their schedule
"""

from aejax import configs


def get_config():
    config = configs.get("vae")
    config.data.binarize = "dynamic"  # train pixels redrawn every step, test set drawn once
    config.model.encoder_widths = (200, 200)  # the decoder mirrors them
    config.model.latent_dim = 50
    config.model.activation = "tanh"
    config.model.output_bias = "pixel_means"  # set from the training set at init
    config.loss.iwae_samples = 1  # importance samples per image: 1 is the VAE's ELBO
    config.train.batch_size = 20
    config.train.epochs = 50
    return config
