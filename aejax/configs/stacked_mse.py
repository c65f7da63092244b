"""The stacked AE at the settings of Geron's "Hands-On Machine Learning with Scikit-Learn and
TensorFlow" (ch. 15): 784-300-150-300-784 ELU, He-normal init, a linear output with MSE
(per-pixel mean), L2 penalty 1e-4 * sum(w^2) / 2, Adam 0.01, batch 150, 5 epochs.

aejax train --config stacked_mse --workdir runs/stacked_mse
"""

import ml_collections

from aejax import configs


def get_config() -> ml_collections.ConfigDict:
    config = configs.get("stacked")
    config.loss.likelihood = "gaussian"  # linear output, squared error
    config.loss.reduction = "mean"  # per pixel, as tf.reduce_mean(tf.square(outputs - X))
    # The book's l2_regularizer(1e-4) is 1e-4 * tf.nn.l2_loss(w) = 1e-4 * sum(w^2) / 2.
    config.loss.regularizers.l2.weight = 5e-5
    config.opt.lr = 0.01
    config.train.batch_size = 150
    config.train.epochs = 5
    return config
