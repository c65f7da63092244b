"""The feature network of generative evaluation (`aejax.evaluation.fidelity`): a conv classifier trained
from scratch on the dataset's training labels, conv32-pool-conv64-pool-conv64-pool to a 4x4x64
map and a dense softmax head. Its features are the head's input, the penultimate layer: the
4x4x64 map flattened, 1,024 numbers per image. Seed 0, 5 epochs, Adam 1e-3, batch 200.

aejax train --config fidelity_features --workdir runs/fidelity_features/mnist \
  --config.data.name=mnist
"""

from aejax import configs
from aejax.configs import fields


def get_config():
    conv = configs.get("conv")
    conv.model.encoder_features = (32, 64, 64)  # each conv3x3-relu then 2x2 max pooling
    return fields.classifier_config(conv, epochs=5)
