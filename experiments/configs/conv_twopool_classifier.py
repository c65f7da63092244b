"""The two-pool conv AE's classifier as its tutorial builds it: a dense softmax head on the
flattened 28x28 output of the whole autoencoder (encoder and decoder), all trained with the
labels; leave init_from out to train it from scratch:

aejax train --config experiments/configs/conv_twopool.py --workdir runs/conv_twopool
aejax train --config experiments/configs/conv_twopool_classifier.py \
  --workdir runs/conv_twopool_classifier --config.train.init_from=runs/conv_twopool
"""

from pathlib import Path

from aejax import config as aejax_config
from aejax import supervised


def get_config():
    conv = aejax_config.load(Path(__file__).with_name("conv_twopool.py"))
    return supervised.classifier_config(conv, epochs=10, head_input="decoded")
