"""A softmax classifier on the SDAE's 2-D code, its encoder fine-tuned with the labels.

Start it from the pretrained SDAE, or leave init_from out to train the same network from
scratch; add --config.opt.trainable="('head',)" to freeze the encoder (a softmax probe):

aejax pretrain --config sdae --workdir runs/sdae
aejax train --config sdae_classifier --workdir runs/sdae_classifier \
  --config.train.init_from=runs/sdae/finetune
"""

from aejax import configs
from aejax.configs import fields


def get_config():
    sdae = configs.get("sdae")
    return fields.classifier_config(sdae, epochs=20)
