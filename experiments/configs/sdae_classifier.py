"""A softmax classifier on the SDAE's 2-D code, its encoder fine-tuned with the labels.

Start it from the pretrained SDAE, or leave init_from out to train the same network from
scratch; add --config.opt.trainable="('head',)" to freeze the encoder (a softmax probe):

aejax pretrain --config experiments/configs/sdae.py --workdir runs/sdae
aejax train --config experiments/configs/sdae_classifier.py --workdir runs/sdae_classifier \
  --config.train.init_from=runs/sdae/finetune
"""

from pathlib import Path

from aejax import config as aejax_config
from aejax import supervised


def get_config():
    sdae = aejax_config.load(Path(__file__).with_name("sdae.py"))
    return supervised.classifier_config(sdae, epochs=20)
