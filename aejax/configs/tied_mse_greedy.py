"""The tied stacked AE of `tied_mse` trained greedily, one autoencoder at a time as Geron's
"Hands-On Machine Learning with Scikit-Learn and TensorFlow" (ch. 15) trains it: phase 1 trains
the outer tied pair (784-300-784, MSE on the pixels), phase 2 the inner pair (300-150-300, MSE
on the first hidden code) with the outer one frozen, each phase with its own kernel's L2
penalty; no end-to-end fine-tuning after.

aejax pretrain --config tied_mse_greedy --workdir runs/tied_mse_greedy
"""

import ml_collections

from aejax import configs


def get_config() -> ml_collections.ConfigDict:
    config = configs.get("tied_mse")
    config.pretrain = ml_collections.ConfigDict()
    config.pretrain.layer_epochs = 5  # per greedy phase, one phase per encoder layer
    config.pretrain.finetune = False  # True: then train.epochs end to end
    return config
