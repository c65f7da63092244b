"""WAE-MMD with the RBF kernel exp(-|a - b|^2 / C), C = 2 x 8; otherwise config wae_mmd.

aejax train --config wae_mmd_rbf --workdir runs/wae_mmd_rbf
"""

from aejax import configs


def get_config():
    config = configs.get("wae_mmd")
    config.model.mmd_kernel = "rbf"
    return config
