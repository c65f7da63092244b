"""The convolutional winner-take-all AE (Makhzani and Frey, 2015): conv encoder 28-14-7 to 32
feature maps, each keeping only its largest activation per image (spatial sparsity) and, in
training, only for the 20% of the batch where that winner is largest (lifetime sparsity);
a transposed-conv decoder reconstructs from those few winners.

aejax train --config wta --workdir runs/wta
"""

from aejax import configs


def get_config():
    config = configs.get("conv")
    config.model.bottleneck = "wta"
    config.model.encoder_features = (32, 32)
    config.model.decoder_features = (32, 32)
    config.model.decoder = "transpose"
    config.model.spatial_sparsity = True
    config.model.lifetime_rate = 0.2
    return config
