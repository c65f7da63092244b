"""The sparse AE with an L1 activity penalty on the code instead of the KL to a target rate.

aejax train --config experiments/configs/sparse_l1.py --workdir runs/sparse_l1
"""

from pathlib import Path

import ml_collections

from aejax import config as aejax_config


def get_config() -> ml_collections.ConfigDict:
    config = aejax_config.load(Path(__file__).with_name("sparse.py"))
    config.loss.regularizers = ml_collections.ConfigDict()
    config.loss.regularizers.l1_sparsity = ml_collections.ConfigDict()
    config.loss.regularizers.l1_sparsity.weight = 1e-3  # times sum_j |h_j| per image; 0.5 at init
    return config
