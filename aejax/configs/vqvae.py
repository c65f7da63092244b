"""VQ-VAE (van den Oord et al., 2017): a conv encoder 28-14-7 to a 7x7 map of 16-d vectors,
each replaced by the nearest of 64 codebook vectors (straight-through gradient), and the
nearest-upsampling conv decoder; the codebook learnt by its loss term, commitment weight 1;
Bernoulli nats per image, the codebook terms per image too. The codebook's perplexity is logged
(train/perplexity).

aejax train --config vqvae --workdir runs/vqvae
"""

from aejax import configs


def get_config():
    config = configs.get("conv")
    config.model.name = "vqvae"  # conv encoder, vq bottleneck, nearest-upsampling decoder
    config.model.encoder_features = (32, 16)  # each conv3x3-relu then 2x2 max pooling: 7x7x16
    config.model.decoder_features = (16, 32)
    config.model.num_codes = 64
    config.model.code_dim = 16  # one codebook vector per position of the 7x7 map
    config.model.codebook = "loss"
    config.model.code_activation = "linear"  # the encoder's last layer: codes of any sign
    config.loss.reduction = "sum"  # nats per image: the codebook terms stay a small part
    # The paper's 0.25 goes with per-pixel mean losses; beside nats per image it let the codes
    # drift from the codebook (mnist5k, 4 epochs: 3.9 per code vector against 0.5 at 1.0).
    config.loss.commitment_weight = 1.0
    return config
