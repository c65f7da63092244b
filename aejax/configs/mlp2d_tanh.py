"""784-2-784 with a tanh code, MSE: a 2-D map of the digits to plot (the linear AE, bent).

aejax train --config mlp2d_tanh --workdir runs/mlp2d_tanh
"""

import ml_collections

from aejax import configs


def get_config() -> ml_collections.ConfigDict:
    config = configs.get("linear")
    config.model.code_activation = "tanh"  # a bounded code: the map fits in [-1, 1]^2
    return config
