"""The tied stacked AE at the seed's settings: `stacked_mse` (linear output, MSE, L2 5e-5 *
sum(w^2), Adam 0.01, batch 150, 5 epochs) whose decoder uses the encoder's kernels, transposed.

aejax train --config experiments/configs/tied_mse.py --workdir runs/tied_mse
"""

from pathlib import Path

import ml_collections

from aejax import config as aejax_config


def get_config() -> ml_collections.ConfigDict:
    config = aejax_config.load(Path(__file__).with_name("stacked_mse.py"))
    config.model.name = "tied"
    return config
