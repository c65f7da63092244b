"""The two-pool conv AE's classifier as its tutorial builds it: a dense softmax head on the
flattened 28x28 output of the whole autoencoder (encoder and decoder), all trained with the
labels; leave init_from out to train it from scratch:

aejax train --config conv_twopool --workdir runs/conv_twopool
aejax train --config conv_twopool_classifier \
  --workdir runs/conv_twopool_classifier --config.train.init_from=runs/conv_twopool
"""

from aejax import configs
from aejax.configs import fields


def get_config():
    conv = configs.get("conv_twopool")
    return fields.classifier_config(conv, epochs=10, head_input="decoded")
