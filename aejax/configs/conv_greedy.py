"""A stacked convolutional AE trained greedily (Masci et al., 2011): conv16-pool-conv32-pool-
conv8-pool to a 4x4x8 code, mirrored by stride-2 transposed convolutions 4-7-14-28 (32, 16, 16
channels) and a 3x3 convolution to logits. Phase k trains encoder layer k and the decoder layer
that gives back its input, on the frozen lower layers' maps (phase 1: BCE on the pixels, the
inner phases squared error on the maps); then the whole AE is fine-tuned end to end.

aejax pretrain --config conv_greedy --workdir runs/conv_greedy
"""

import ml_collections

from aejax import configs


def get_config() -> ml_collections.ConfigDict:
    config = configs.get("conv")
    config.model.encoder_features = (16, 32, 8)  # each conv3x3-relu then 2x2 max pooling
    # Decoder layer j gives back encoder layer D-2-j's channels: (32, 16), then any width.
    config.model.decoder_features = (32, 16, 16)
    config.model.decoder = "transpose"  # its maps retrace the encoder's sides, layer by layer
    config.pretrain = ml_collections.ConfigDict()
    config.pretrain.layer_epochs = 5  # per greedy phase, one phase per encoder layer
    config.pretrain.finetune = True  # then train.epochs end to end
    config.train.epochs = 10
    return config
