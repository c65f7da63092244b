"""The objective of a classifier: softmax cross-entropy on integer labels, with the accuracy."""

import flax.linen as nn
import jax.numpy as jnp
import ml_collections
import optax


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
