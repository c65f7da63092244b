"""VQ-VAE (van den Oord et al., 2017): a conv encoder 28-14-7 to a 7x7 map of 16-d vectors,
each replaced by the nearest of 64 codebook vectors (straight-through gradient), and the
nearest-upsampling conv decoder; the codebook learnt by its loss term, commitment weight 0.25,
Bernoulli nats per image. The codebook's perplexity is logged (train/perplexity).

aejax train --config vqvae --workdir runs/vqvae
"""

from aejax import configs


def get_config():
    config = configs.get("conv")
    config.model.bottleneck = "vq"
    config.model.encoder_features = (32, 16)  # each conv3x3-relu then 2x2 max pooling: 7x7x16
    config.model.decoder_features = (16, 32)
    config.model.num_codes = 64
    config.model.code_dim = 16  # one codebook vector per position of the 7x7 map
    config.model.codebook = "loss"
    config.loss.reduction = "sum"  # nats per image: the codebook terms stay a small part
    config.loss.commitment_weight = 0.25
    return config
