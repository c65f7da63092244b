"""784-2-784 with a tanh code, MSE: a 2-D map of the digits to plot (the linear AE, bent).

aejax train --config experiments/configs/mlp2d_tanh.py --workdir runs/mlp2d_tanh
"""

from pathlib import Path

import ml_collections

from aejax import config as aejax_config


def get_config() -> ml_collections.ConfigDict:
    config = aejax_config.load(Path(__file__).with_name("linear.py"))
    config.model.code_activation = "tanh"  # a bounded code: the map fits in [-1, 1]^2
    return config
