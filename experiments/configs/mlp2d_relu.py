"""784-2-784 with a ReLU code, MSE: the 2-D map of mlp2d_tanh.py in the positive quadrant.

aejax train --config experiments/configs/mlp2d_relu.py --workdir runs/mlp2d_relu
"""

from pathlib import Path

import ml_collections

from aejax import config as aejax_config


def get_config() -> ml_collections.ConfigDict:
    config = aejax_config.load(Path(__file__).with_name("linear.py"))
    config.model.code_activation = "relu"
    config.opt.lr = 1e-3  # at linear.py's 1e-2 both code units die in the first epoch
    return config
