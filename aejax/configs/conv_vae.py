"""The convolutional VAE: conv16-pool-conv32-pool-conv32-pool to a 4x4x32 map, dense heads to a
16-d gaussian; decoder dense to 4x4x32, then conv32-conv32-conv16 with nearest upsampling
(4-8-16-14-28) and a 3x3 convolution to Bernoulli logits; nats per image, batch 128.

aejax train --config conv_vae --workdir runs/conv_vae
"""

from aejax import configs


def get_config():
    config = configs.get("vae")
    config.model.name = "conv_vae"
    config.model.encoder_widths, config.model.activation = None, "relu"  # the mlp's, unread
    config.model.encoder_features = (16, 32, 32)  # each conv3x3-relu then 2x2 max pooling
    config.model.decoder_features = (32, 32, 16)  # each conv3x3-relu then 2x nearest upsampling
    config.model.latent_dim = 16
    config.train.batch_size = 128
    config.train.epochs = 20
    config.train.chunk = 1  # XLA:CPU runs these convolutions slower inside lax.scan (see conv.py)
    return config
