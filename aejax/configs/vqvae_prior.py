"""A learned prior over the codes of a trained VQ-VAE, to sample it: a causal transformer
(2 layers, 64 wide, 4 heads) over the 7x7 codebook indices in raster order, trained on the
codes the frozen VQ-VAE gives the training images, by the VQ-VAE run's own data and loop.
`samples.png` holds codes drawn from it ancestrally, decoded by the VQ-VAE's decoder; the
loss is the codes' negative log-likelihood in nats per code.

aejax train --config vqvae --workdir runs/vqvae
aejax train --config vqvae_prior --workdir runs/vqvae_prior --config.train.init_from=runs/vqvae

`model.autoencoder` must describe the VQ-VAE run (here vqvae's model; a vqvae_ema run has the
same parameters and codes).
"""

import copy

import ml_collections

from aejax import configs
from aejax.configs import fields


def get_config() -> ml_collections.ConfigDict:
    vqvae = configs.get("vqvae")
    config = fields.base()
    config.seed = vqvae.seed
    config.data = copy.deepcopy(vqvae.data)
    config.model.name = "code_prior"
    config.model.autoencoder = copy.deepcopy(vqvae.model)  # the VQ-VAE whose codes are modelled
    config.model.embed_dim = 64  # the transformer's width
    config.model.num_layers = 2  # pre-norm blocks: causal self-attention, then a 4x wide MLP
    config.model.num_heads = 4
    config.loss.objective = "code_prior"  # cross-entropy of each code given those before it
    config.loss.likelihood = vqvae.loss.likelihood  # how decoded samples become images
    config.opt.trainable = ("prior",)  # the VQ-VAE stays as trained
    config.train.init_from = "runs/vqvae"  # the VQ-VAE run: its parameters, frozen
    config.train.batch_size = 100
    config.train.epochs = 20
    config.train.chunk = 1  # the encoder's convolutions run in each step (slow in lax.scan on CPU)
    return config
