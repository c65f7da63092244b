"""aejax's mlp, vae and conv models trained by Keras 3 `model.fit` on the JAX backend.

    python -m benchmarks.peers.keras_fit conv --epochs 2 --seed 0 --out row.json

What a Keras user writes: a functional model, `compile` with Adam and a loss (`jit_compile`
left at its default, which compiles on JAX), then `model.fit(x, x, batch_size, epochs,
shuffle=True)`; a callback times each epoch, so the first includes compilation. The models are
aejax's layer for layer, channels last, with its initialisers (Keras's LecunNormal is flax's
lecun_normal, the same truncated normal and correction) and zero biases; each ends in logits and
the loss is BCE on logits, as aejax computes it. The VAE's KL is an `add_loss` of its sampling
layer. `verbose=0`: the progress bar would read the loss every step, aejax's never does.
Not part of CI: `pip install -e ".[peers]"`.
"""

import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import time

import jax
import keras
from keras import layers, ops

from benchmarks.peers import common

LECUN = "lecun_normal"  # flax's default kernel init; Keras's own default is glorot_uniform


def mlp() -> keras.Model:
    """784-32-784, ReLU code, logits out; glorot_uniform kernels, as the mlp config."""
    x = keras.Input(common.IMAGE_SHAPE)
    h = layers.Dense(32, activation="relu")(layers.Flatten()(x))
    logits = layers.Reshape(common.IMAGE_SHAPE)(layers.Dense(784)(h))
    return keras.Model(x, logits, name="mlp")


class Sampling(layers.Layer):
    """z = mu + exp(logvar / 2) * eps, sampled in evaluation too (as aejax); adds the batch
    mean of KL(q(z|x) || N(0, I)) to the model's loss."""

    def __init__(self, seed: int, **kwargs):
        super().__init__(**kwargs)
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, mu, logvar):
        kl = 0.5 * ops.sum(ops.exp(logvar) + ops.square(mu) - 1.0 - logvar, axis=-1)
        self.add_loss(ops.mean(kl))
        eps = keras.random.normal(ops.shape(mu), seed=self.seed_generator)
        return mu + ops.exp(0.5 * logvar) * eps


def vae(seed: int) -> keras.Model:
    """784-500-500-20 ELU encoder with mean and log-variance heads, decoder 20-500-500-784
    ELU to Bernoulli logits."""
    dense = lambda width, activation=None: layers.Dense(width, activation, kernel_initializer=LECUN)
    x = keras.Input(common.IMAGE_SHAPE)
    h = dense(500, "elu")(dense(500, "elu")(layers.Flatten()(x)))
    z = Sampling(seed)(dense(20)(h), dense(20)(h))
    h = dense(500, "elu")(dense(500, "elu")(z))
    logits = layers.Reshape(common.IMAGE_SHAPE)(dense(784)(h))
    return keras.Model(x, logits, name="vae")


def conv() -> keras.Model:
    """conv16-pool-conv8-pool-conv8-pool (28-14-7-4, 'same' pooling), then conv8-up-conv8-up-
    conv16 ('valid': 16 to 14)-up and a 3x3 convolution to logits."""
    conv_layer = lambda f, padding="same", activation="relu": layers.Conv2D(
        f, 3, padding=padding, activation=activation, kernel_initializer=LECUN
    )
    x = keras.Input(common.IMAGE_SHAPE)
    h = x
    for f in (16, 8, 8):
        h = layers.MaxPooling2D(2, padding="same")(conv_layer(f)(h))
    for f, padding in ((8, "same"), (8, "same"), (16, "valid")):
        h = layers.UpSampling2D(2)(conv_layer(f, padding)(h))
    logits = conv_layer(1, activation=None)(h)
    return keras.Model(x, logits, name="conv")


def bce_per_image(x, logits):
    """BCE summed over each image's pixels; Keras averages it over the batch: nats per image."""
    return ops.sum(ops.binary_crossentropy(x, logits, from_logits=True), axis=(1, 2, 3))


MODELS = {
    "mlp": (lambda seed: mlp(), keras.losses.BinaryCrossentropy(from_logits=True)),
    "vae": (vae, bce_per_image),
    "conv": (lambda seed: conv(), keras.losses.BinaryCrossentropy(from_logits=True)),
}


class EpochClock(keras.callbacks.Callback):
    """Seconds of each epoch's training, printed as it ends (fit has read its loss by then)."""

    def __init__(self, epochs: int, samples: int):
        super().__init__()
        self.epochs, self.samples, self.seconds = epochs, samples, []

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self.start)
        line = common.epoch_line(
            epoch + 1, self.epochs, logs["loss"], self.seconds[-1], self.samples
        )
        print(line, flush=True)


def main(argv: list[str] | None = None) -> None:
    args = common.parse_args(__doc__.splitlines()[0], argv)
    keras.utils.set_random_seed(args.seed)
    build, loss = MODELS[args.model]
    model = build(args.seed)
    params = common.check_params("keras", args.model, model.count_params())
    batch_size, lr = common.settings(args.model)
    optimizer = keras.optimizers.Adam(
        lr, beta_1=common.ADAM["b1"], beta_2=common.ADAM["b2"], epsilon=common.ADAM["eps"]
    )
    model.compile(optimizer=optimizer, loss=loss)
    x_train, x_test = common.splits()
    # fit would train on a smaller last batch; whole batches only, as aejax (on Fashion-MNIST's
    # 60,000 images every config's batch divides evenly, so nothing is dropped).
    x_train = x_train[: len(x_train) // batch_size * batch_size]
    clock = EpochClock(args.epochs, len(x_train))
    model.fit(
        x_train,
        x_train,
        batch_size=batch_size,
        epochs=args.epochs,
        shuffle=True,
        callbacks=[clock],
        verbose=0,
    )
    test_loss = model.evaluate(x_test, x_test, batch_size=common.EVAL_BATCH, verbose=0)
    result = common.row(
        "keras",
        args,
        epoch_seconds=clock.seconds,
        samples_per_epoch=len(x_train),
        test_loss=float(test_loss),
        params=params,
        versions={"keras": keras.__version__, "jax": jax.__version__},
        backend=keras.backend.backend(),
    )
    common.write_row(args.out, result)


if __name__ == "__main__":
    main()
