"""The sparse AE with an L1 activity penalty on the code instead of the KL to a target rate.

aejax train --config sparse_l1 --workdir runs/sparse_l1
"""

import ml_collections

from aejax import configs


def get_config() -> ml_collections.ConfigDict:
    config = configs.get("sparse")
    config.loss.regularizers = ml_collections.ConfigDict()
    config.loss.regularizers.l1_sparsity = ml_collections.ConfigDict()
    config.loss.regularizers.l1_sparsity.weight = 1e-3  # times sum_j |h_j| per image; 0.5 at init
    return config
