"""The fully connected winner-take-all AE (Makhzani and Frey, 2015): 784-1000 ReLU code of which
each unit stays on, in training, only for the 5% of the batch where it is largest (lifetime
sparsity), and the mirror MLP decoder.

aejax train --config wta_fc --workdir runs/wta_fc
"""

from aejax import configs


def get_config():
    config = configs.get("mlp")
    config.model.bottleneck = "wta"
    config.model.encoder_widths = (1000,)
    config.model.lifetime_rate = 0.05
    config.train.batch_size = 100
    return config
