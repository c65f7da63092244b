"""A dense softmax head on the conv AE's 4x4x8 code (conv16-pool-conv8-pool-conv8-pool), its
encoder fine-tuned with the labels; leave init_from out to train it from scratch, or add
--config.opt.trainable="('head',)" to freeze the encoder:

aejax train --config experiments/configs/conv.py --workdir runs/conv
aejax train --config experiments/configs/conv_classifier.py --workdir runs/conv_classifier \
  --config.train.init_from=runs/conv
"""

from pathlib import Path

from aejax import config as aejax_config
from aejax import supervised


def get_config():
    conv = aejax_config.load(Path(__file__).with_name("conv.py"))
    return supervised.classifier_config(conv, epochs=10)
