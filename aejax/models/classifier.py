"""A softmax classifier on an autoencoder's code (its loss: `aejax.objectives.classification`).

The classifier wraps a whole autoencoder. On its code (`head_input="code"`) it only calls
`encode`, so its parameters are the encoder's (under `autoencoder`, no decoder) and a dense
`head`; on its output (`"decoded"`, the two-pool conv tutorial's classifier) the decoder's too.
`train.init_from` can fill them from a trained autoencoder's run. Trained with every parameter
it fine-tunes the encoder; with `opt.trainable=("head",)` the encoder is frozen and the head
is a softmax probe.
"""


from typing import ClassVar

import flax.linen as nn
import jax

from aejax.models.capabilities import Capabilities

HEAD_INPUTS = ("code", "decoded")  # what the softmax head reads, flattened


class Classifier(nn.Module):
    """logits = head(flatten(code)), the code being the autoencoder's (a VAE's posterior mean),
    or head(flatten(sigmoid(decode(code)))): the reconstruction, with `head_input="decoded"`."""

    autoencoder: nn.Module
    num_classes: int  # set from the data's labels (`factory.fit_to_data`)
    head_input: str = "code"  # one of HEAD_INPUTS

    capabilities: ClassVar[Capabilities] = Capabilities(classifies=True)  # no images back

    def setup(self):
        self.head = nn.Dense(self.num_classes)

    def encode(self, x: jax.Array):
        return self.autoencoder.encode(x)  # an Encoding: a VAE's code is its posterior mean

    def __call__(self, x: jax.Array, *, train: bool = False) -> tuple[jax.Array, dict]:
        del train
        code = self.encode(x).code
        features = code
        if self.head_input == "decoded":  # the two-pool tutorial's head reads the sigmoid image
            features = nn.sigmoid(self.autoencoder.decode(code))
        return self.head(features.reshape(code.shape[0], -1)), {"code": code}


