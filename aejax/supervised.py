"""A softmax classifier on an autoencoder's code, its loss, and stratified labelled subsets.

The classifier wraps a whole autoencoder. On its code (`head_input="code"`) it only calls
`encode`, so its parameters are the encoder's (under `autoencoder`, no decoder) and a dense
`head`; on its output (`"decoded"`, the two-pool conv tutorial's classifier) the decoder's too.
`train.init_from` can fill them from a trained autoencoder's run. Trained with every parameter
it fine-tunes the encoder; with `opt.trainable=("head",)` the encoder is frozen and the head
is a softmax probe.
"""

import copy

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from aejax import config as aejax_config


HEAD_INPUTS = ("code", "decoded")  # what the softmax head reads, flattened


class Classifier(nn.Module):
    """logits = head(flatten(code)), the code being the autoencoder's (a VAE's posterior mean),
    or head(flatten(sigmoid(decode(code)))): the reconstruction, with `head_input="decoded"`."""

    autoencoder: nn.Module
    num_classes: int  # set from the data's labels (`models.fit_to_data`)
    head_input: str = "code"  # one of HEAD_INPUTS

    def setup(self):
        self.head = nn.Dense(self.num_classes)

    def encode(self, x: jax.Array):
        return self.autoencoder.encode(x)  # an Encoding: a VAE's code is its posterior mean

    def __call__(self, x: jax.Array, *, train: bool = False) -> tuple[jax.Array, dict]:
        del train
        code = self.encode(x).code
        features = code
        if self.head_input == "decoded":  # the seed's decoder ends in a sigmoid: its image
            features = nn.sigmoid(self.autoencoder.decode(code))
        return self.head(features.reshape(code.shape[0], -1)), {"code": code}


def make_loss_fn(model: nn.Module, cfg: ml_collections.ConfigDict):
    """`loss_fn(params, batch, rng, train, step=None)` for batches {"image", "label"}: mean
    cross-entropy, with the accuracy as a metric; no term depends on the step."""
    del cfg  # nothing to choose: softmax cross-entropy on integer labels

    def loss_fn(params, batch, rng, train, step=None):
        logits, _ = model.apply(
            {"params": params}, batch["image"], train=train, rngs={"noise": rng}
        )
        loss = jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, batch["label"]))
        accuracy = jnp.mean(jnp.argmax(logits, axis=-1) == batch["label"])
        return loss, {"loss": loss, "accuracy": accuracy}

    return loss_fn


def stratified_subset(labels_N: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Sorted indices of `round(fraction * n_c)` examples of each class c, drawn with `seed`.

    Each class keeps its share, so 1% of the labels is 1% of every class.
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"data.label_fraction must be in (0, 1], got {fraction}")
    rng = np.random.default_rng(seed)
    keep = []
    for c in np.unique(labels_N):
        members = np.flatnonzero(labels_N == c)
        count = round(fraction * members.size)
        if count == 0:
            raise ValueError(
                f"data.label_fraction={fraction} leaves class {c} ({members.size} examples) with "
                "no labelled example; use a larger fraction or a larger dataset"
            )
        keep.append(rng.choice(members, count, replace=False))
    return np.sort(np.concatenate(keep))


def classifier_config(
    autoencoder_config: ml_collections.ConfigDict,
    *,
    init_from: str = "",
    trainable: tuple[str, ...] = (),
    label_fraction: float = 1.0,
    epochs: int | None = None,
    head_input: str = "code",
) -> ml_collections.ConfigDict:
    """The config of a classifier on `autoencoder_config`'s model, same data, optimiser, seed.

    `init_from`: the autoencoder's run ("" trains from scratch); `trainable=("head",)` freezes
    the encoder; `label_fraction` < 1 trains on a stratified subset of the labels;
    `head_input="decoded"` puts the head on the reconstruction instead of the code.
    """
    config = aejax_config.base()  # its own model and loss; the rest copied from the autoencoder's
    config.seed = autoencoder_config.seed
    for group in ("data", "opt", "train"):
        config[group] = copy.deepcopy(autoencoder_config[group])
    config.data.label_fraction = label_fraction
    config.data.subset_seed = 0  # the same labelled subset for every model and seed
    config.opt.trainable = tuple(trainable)
    config.train.init_from = str(init_from)
    if epochs is not None:
        config.train.epochs = epochs
    config.model.name = "classifier"
    config.model.num_classes = 10  # training sets it from the data's labels
    config.model.head_input = head_input  # "code", or "decoded": the flattened reconstruction
    config.model.autoencoder = copy.deepcopy(autoencoder_config.model)
    config.loss.objective = "classification"  # softmax cross-entropy, accuracy reported
    return config
