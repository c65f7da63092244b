"""A dense softmax head on the conv AE's 4x4x8 code (conv16-pool-conv8-pool-conv8-pool), its
encoder fine-tuned with the labels; leave init_from out to train it from scratch, or add
--config.opt.trainable="('head',)" to freeze the encoder:

aejax train --config conv --workdir runs/conv
aejax train --config conv_classifier --workdir runs/conv_classifier \
  --config.train.init_from=runs/conv
"""

from aejax import configs
from aejax.configs import fields


def get_config():
    conv = configs.get("conv")
    return fields.classifier_config(conv, epochs=10)
