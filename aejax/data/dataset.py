"""`Dataset`: images (N, H, W, C) or vectors (N, D), and optional labels, checked once,
whatever their source.

Images are kept as uint8 (0..255) where the source is 8-bit, which holds a dataset on the device
in a quarter of the memory of float32; `as_float` scales them to [0, 1] inside the compiled step,
after the batch is gathered. Float images (in [0, 1]) are kept as float32, unquantised. Vectors, a network's activations
for a sparse autoencoder, are float32 of any finite value.
Bad data is refused here, naming the fault and the fix, before anything is compiled.
"""

import dataclasses
import hashlib

import jax
import jax.numpy as jnp
import numpy as np

PIXEL_MAX = 255  # the value of a white uint8 pixel
CHANNELS = (1, 3, 4)  # grey, RGB, RGBA: an image's last axis; on its second, it is channels-first
# uint8 grey levels become floats in [0, 1] as `x * (1 / 255)` in float32, on the host and in the
# step alike (XLA compiles `x / 255` into that product). A lookup table of exact quotients cost
# the mlp step a quarter of its speed. Inside a step XLA may fold the scale into the first matmul,
# so uint8 and float32 storage of the same images train alike to float rounding.
_SCALE = np.float32(1 / PIXEL_MAX)


@dataclasses.dataclass(frozen=True, eq=False)
class Dataset:
    """A split of images, or of vectors, with optional integer labels.

    Integer images must lie in 0..255 and become uint8; float images in [0, 1] become float32;
    rank-2 float arrays are vectors (N, D), any finite values, as float32. Labels, when given, are one per image in 0..num_classes-1 (num_classes defaults to the
    largest label plus one).
    """

    images: np.ndarray  # [N, H, W, C] images, or [N, D] vectors
    labels: np.ndarray | None = None  # [N] int32
    num_classes: int | None = None
    name: str = "arrays"

    def __post_init__(self):
        set_field = lambda field, value: object.__setattr__(self, field, value)  # frozen
        set_field("images", _checked_images(self.images, self.name))
        if self.labels is None:
            if self.num_classes is not None:
                raise ValueError(
                    f"{self.name}: num_classes={self.num_classes} given without labels"
                )
            return
        labels = _checked_labels(self.labels, len(self.images), self.name)
        top = int(labels.max(initial=-1)) + 1
        num_classes = top if self.num_classes is None else int(self.num_classes)
        if num_classes < max(top, 1):
            raise ValueError(
                f"{self.name}: a label of {top - 1} needs num_classes of at least {top}, "
                f"got {num_classes}"
            )
        set_field("labels", labels)
        set_field("num_classes", num_classes)

    def __len__(self) -> int:
        return len(self.images)

    @property
    def image_shape(self) -> tuple[int, ...]:
        """An example's shape: (H, W, C) of an image, (D,) of a vector."""
        return tuple(int(d) for d in self.images.shape[1:])

    @property
    def vectors(self) -> bool:
        return self.images.ndim == 2

    def scaled(self, scale: float) -> "Dataset":
        """The vectors times `scale`."""
        return Dataset(self.images * np.float32(scale), self.labels, self.num_classes, self.name)

    def take(self, indices) -> "Dataset":
        """The examples at `indices`, with the same number of classes."""
        labels = None if self.labels is None else self.labels[indices]
        return Dataset(self.images[indices], labels, self.num_classes, self.name)

    def fingerprint(self) -> dict:
        """Shape, dtype and a SHA-256 of the images' bytes (and the labels'): what a workdir
        records to tell its data from other data. MNIST's 60,000 images hash in about 0.1 s."""
        digest = hashlib.sha256(np.ascontiguousarray(self.images).data)
        if self.labels is not None:
            digest.update(self.labels.tobytes())
        return split_fingerprint(self.images.shape, self.images.dtype, self.labels is not None, digest)

    def float_images(self) -> np.ndarray:
        """float32 images in [0, 1] on the host (exactly as `as_float` gives them on the device)."""
        if self.images.dtype == np.uint8:
            return self.images.astype(np.float32) * _SCALE
        return self.images


def split_fingerprint(shape: tuple, dtype, labelled: bool, digest) -> dict:
    """A split's fingerprint as `checkpoint.claim_workdir` records it, from its `hashlib` digest."""
    return {
        "shape": [int(d) for d in shape],
        "dtype": str(np.dtype(dtype)),
        "labels": labelled,
        "sha256": digest.hexdigest(),
    }


def as_float(batch):
    """Every uint8 leaf of `batch` as float32 in [0, 1]; other leaves (labels, floats) as they are.

    Called where a step or an evaluation gathers its batch, so the cast fuses into the gather.
    """

    def scale(a):
        return a.astype(jnp.float32) * _SCALE if a.dtype == jnp.uint8 else a

    return jax.tree.map(scale, batch)


def coerce(data, name: str) -> Dataset:
    """A `Dataset` from a Dataset, an image array, or an `(images, labels)` pair."""
    if isinstance(data, Dataset):
        return data
    if isinstance(data, tuple) and len(data) == 2:
        return Dataset(np.asarray(data[0]), np.asarray(data[1]), name=name)
    return Dataset(np.asarray(data), name=name)


def hold_out(dataset: Dataset, fraction: float, seed: int = 0) -> tuple[Dataset, Dataset]:
    """(train, test): a random `fraction` of `dataset` held out as its test split, by `seed`."""
    train_rows, test_rows = held_out_rows(len(dataset), fraction, dataset.name, seed)
    return dataset.take(train_rows), dataset.take(test_rows)


def held_out_rows(
    n: int, fraction: float, name: str, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """The sorted rows of the training and the test split when a random `fraction` of `n` rows
    is held out, by `seed`."""
    if not 0 < fraction < 1:
        raise ValueError(f"data.test_fraction must be in (0, 1), got {fraction}")
    n_test = round(fraction * n)
    if not 1 <= n_test < n:
        raise ValueError(
            f"{name}: holding out {fraction} of {n} images leaves {n_test} test images; give a "
            "test split or more images"
        )
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[n_test:]), np.sort(order[:n_test])


def _checked_images(images, name: str) -> np.ndarray:
    images = np.asarray(images)
    if images.ndim == 2:
        return _checked_vectors(images, name)
    if images.ndim != 4:
        hint = " (add a channel axis: x[..., None])" if images.ndim == 3 else ""
        raise ValueError(
            f"{name}: images must have rank 4, (N, height, width, channels), or vectors rank "
            f"2, (N, D); got shape {images.shape}{hint}"
        )
    if 0 in images.shape:
        raise ValueError(f"{name}: images of shape {images.shape} hold no pixels")
    if images.shape[1] in CHANNELS and images.shape[3] not in CHANNELS:
        raise ValueError(
            f"{name}: images of shape {images.shape} look channels-first (N, C, H, W); aejax "
            "takes (N, height, width, channels): pass x.transpose(0, 2, 3, 1)"
        )
    if images.dtype == np.uint8:
        return images
    if np.issubdtype(images.dtype, np.integer):
        low, high = images.min(), images.max()
        if low < 0 or high > PIXEL_MAX:
            raise ValueError(
                f"{name}: integer images must lie in 0..{PIXEL_MAX}, found {low}..{high}; "
                "rescale them, or pass float images in [0, 1]"
            )
        return images.astype(np.uint8)
    if images.dtype == np.bool_ or np.issubdtype(images.dtype, np.floating):
        images = images.astype(np.float32)
        if np.isnan(images).any():
            raise ValueError(f"{name}: images hold {np.isnan(images).sum()} NaN values")
        low, high = images.min(), images.max()
        if low < 0 or high > 1:
            hint = " (8-bit pixels? divide by 255, or pass them as uint8)" if high > 1 else ""
            raise ValueError(f"{name}: float images must lie in [0, 1], found {low}..{high}{hint}")
        return images
    raise ValueError(f"{name}: images of dtype {images.dtype}; give uint8 or float in [0, 1]")


def _checked_vectors(vectors, name: str) -> np.ndarray:
    if 0 in vectors.shape:
        raise ValueError(f"{name}: vectors of shape {vectors.shape} hold no values")
    if not np.issubdtype(vectors.dtype, np.floating):
        raise ValueError(
            f"{name}: vectors (N, D) of dtype {vectors.dtype}; vectors are float activations. "
            "Flattened images? Give them as (N, height, width, channels): x.reshape(-1, 28, 28, 1)"
        )
    vectors = vectors.astype(np.float32)
    bad = ~np.isfinite(vectors)
    if bad.any():
        raise ValueError(
            f"{name}: vectors hold {bad.sum()} NaN or infinite values, first in row "
            f"{np.argwhere(bad)[0][0]}; drop or repair those rows"
        )
    return vectors


def _checked_labels(labels, n: int, name: str) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.shape != (n,):
        raise ValueError(
            f"{name}: labels must be one per image, shape ({n},), got shape {labels.shape}"
        )
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"{name}: labels must be integers (class indices), got {labels.dtype}")
    if n and labels.min() < 0:
        raise ValueError(
            f"{name}: labels must be class indices 0, 1, ...; found {labels.min()}"
        )
    return labels.astype(np.int32)
