"""The stacked denoising AE of the classic recipe: 784-128-64-10-2 ReLU encoder (a linear 2-D
code), mirrored decoder, zero-masking noise (keep 0.8), BCE; greedily pretrained one pair of
layers at a time, then fine-tuned end to end as a denoising AE.

aejax pretrain --config sdae --workdir runs/sdae

and a softmax classifier on its code: aejax/configs/sdae_classifier.py.
"""

import ml_collections

from aejax.configs import fields


def get_config() -> ml_collections.ConfigDict:
    config = fields.base()
    config.model.name = "mlp"
    config.model.encoder_widths = (128, 64, 10, 2)  # the decoder mirrors them: 10-64-128-784
    config.model.activation = "relu"
    config.model.code_activation = "linear"
    config.model.kernel_init = "he_normal"
    config.model.image_shape = (28, 28, 1)
    config.loss.likelihood = "bernoulli"  # pixels; inner phases reconstruct codes with MSE
    config.loss.reduction = "mean"
    config.loss.corruption.name = "masking"  # zero-masking works on pixels and hidden codes alike
    config.loss.corruption.keep_prob = 0.8
    config.loss.corruption.at_eval = False
    config.pretrain = ml_collections.ConfigDict()
    config.pretrain.layer_epochs = 10  # per greedy phase, one phase per encoder layer
    config.pretrain.finetune = True  # then train.epochs of end-to-end denoising
    config.train.batch_size = 100
    config.train.epochs = 20
    return config
