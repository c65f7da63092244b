"""784-2-784 with a ReLU code, MSE: the 2-D map of mlp2d_tanh.py in the positive quadrant.

aejax train --config mlp2d_relu --workdir runs/mlp2d_relu
"""

import ml_collections

from aejax import configs


def get_config() -> ml_collections.ConfigDict:
    config = configs.get("linear")
    config.model.code_activation = "relu"
    config.opt.lr = 1e-3  # at linear.py's 1e-2 both code units die in the first epoch
    return config
