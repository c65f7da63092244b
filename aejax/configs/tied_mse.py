"""The tied stacked AE of Geron's "Hands-On Machine Learning with Scikit-Learn and TensorFlow"
(ch. 15): `stacked_mse` (linear output, MSE, L2 5e-5 * sum(w^2), Adam 0.01, batch 150,
5 epochs) whose decoder uses the encoder's kernels, transposed.

aejax train --config tied_mse --workdir runs/tied_mse
"""

import ml_collections

from aejax import configs


def get_config() -> ml_collections.ConfigDict:
    config = configs.get("stacked_mse")
    config.model.name = "tied"
    return config
