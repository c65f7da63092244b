"""How close a generative model's samples come to the test set: FID, precision and recall, in
the features of a classifier that aejax itself trains on the dataset's labels.

The protocol is fixed (docs/generative_evaluation.md):
  * features: the penultimate layer of the shipped `fidelity_features` classifier (its 4x4x64
    conv map flattened: 1,024 numbers per image), trained with seed 0 on the training split's
    labels. It is an ordinary run, trained once per dataset and reused from its workdir;
  * samples: `SAMPLES` decoder means of prior draws (`Run.sample`, seed 0) clipped to [0, 1],
    against every test image as stored (grey, never binarised);
  * FID: the Fréchet distance between gaussians fitted to the two feature sets, in float64;
  * precision and recall (Kynkäänniemi et al., 2019): each set's manifold is the union of
    balls around its points reaching their `K`-th nearest neighbour; precision is the share of
    samples inside the test set's manifold, recall the share of test images inside the
    samples'. Distances are computed in row batches, so memory stays at one batch.
Every step is deterministic: the same runs give bitwise the same scores.
"""

from pathlib import Path

import ml_collections
import numpy as np

from aejax import api, configs
from aejax.data import sources
from aejax.evaluation import inference
from aejax.training import loop

FEATURES_CONFIG = "fidelity_features"
SAMPLES = 10_000  # generated images scored; the test set's size for MNIST and Fashion-MNIST
K = 3  # the neighbour whose distance is a point's radius in precision and recall
DATA_FIELDS = ("name", "path", "image_size", "test_fraction")  # what picks the dataset


def feature_config(
    data_cfg: ml_collections.ConfigDict, epochs: int | None = None
) -> ml_collections.ConfigDict:
    """The `fidelity_features` config on the dataset `data_cfg` picks (not binarised); `epochs`
    other than the protocol's only for smoke runs and tests."""
    config = configs.load(FEATURES_CONFIG)
    for field in DATA_FIELDS:
        config.data[field] = data_cfg[field]
    if epochs is not None:
        config.train.epochs = epochs
    return config


def feature_run(
    data_cfg: ml_collections.ConfigDict, workdir: str | Path, epochs: int | None = None
) -> api.Run:
    """The feature network of `data_cfg`'s dataset, trained in `workdir` unless it is there.

    A workdir made for another dataset or config is refused by the training loop, naming the
    fields that differ, so a cached network is never used on the wrong data.
    """
    loop.train_and_evaluate(feature_config(data_cfg, epochs), workdir)
    return api.load_run(workdir)


def features(net: api.Run, images: np.ndarray, batch_size: int = 1000) -> np.ndarray:
    """[N, D] float64 penultimate-layer features of images [N, H, W, C] (uint8 or [0, 1])."""
    codes = inference.codes(net.model, net.params, images, batch_size)
    return np.asarray(codes, np.float64).reshape(len(images), -1)


def frechet_distance(mu_a: np.ndarray, cov_a: np.ndarray, mu_b: np.ndarray, cov_b: np.ndarray):
    """||mu_a - mu_b||^2 + tr(A) + tr(B) - 2 tr((A B)^(1/2)) for covariances A and B.

    tr((AB)^(1/2)) = tr((A^(1/2) B A^(1/2))^(1/2)): the matrix inside is symmetric positive
    semi-definite, so both roots come from `eigh` with round-off negatives set to 0, where a
    general `sqrtm` of AB can turn complex on a singular covariance.
    """
    eig_a, vec_a = np.linalg.eigh(cov_a)
    root_a = (vec_a * np.sqrt(np.clip(eig_a, 0, None))) @ vec_a.T
    inner = root_a @ cov_b @ root_a
    trace_root = np.sum(np.sqrt(np.clip(np.linalg.eigvalsh((inner + inner.T) / 2), 0, None)))
    diff = mu_a - mu_b
    return float(diff @ diff + np.trace(cov_a) + np.trace(cov_b) - 2 * trace_root)


def fid(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """The Fréchet distance of gaussian fits (mean, unbiased covariance) to two feature sets."""
    fits = [(np.mean(f, axis=0), np.cov(f, rowvar=False)) for f in (features_a, features_b)]
    return frechet_distance(*fits[0], *fits[1])


def _squared_distances(a_NxD: np.ndarray, b_MxD: np.ndarray) -> np.ndarray:
    d = np.sum(a_NxD**2, axis=1)[:, None] + np.sum(b_MxD**2, axis=1)[None, :] - 2 * a_NxD @ b_MxD.T
    return np.maximum(d, 0)


def knn_radii(points_NxD: np.ndarray, k: int = K, batch_size: int = 1000) -> np.ndarray:
    """Each point's squared distance to its k-th nearest other point."""
    if len(points_NxD) <= k:
        raise ValueError(f"a manifold of k={k} neighbours needs more than {k} points")
    radii = []
    for i in range(0, len(points_NxD), batch_size):
        d = _squared_distances(points_NxD[i : i + batch_size], points_NxD)
        radii.append(np.partition(d, k, axis=1)[:, k])  # index 0 is the point itself
    return np.concatenate(radii)


def precision_recall(
    real_NxD: np.ndarray, fake_MxD: np.ndarray, k: int = K, batch_size: int = 1000
) -> tuple[float, float]:
    """(share of `fake` in the k-NN manifold of `real`, share of `real` in that of `fake`)."""
    radii_real, radii_fake = knn_radii(real_NxD, k, batch_size), knn_radii(fake_MxD, k, batch_size)
    fake_inside, real_inside = [], np.zeros(len(real_NxD), bool)
    for i in range(0, len(fake_MxD), batch_size):
        d_BxN = _squared_distances(fake_MxD[i : i + batch_size], real_NxD)
        fake_inside.append(np.any(d_BxN <= radii_real[None, :], axis=1))
        real_inside |= np.any(d_BxN <= radii_fake[i : i + batch_size, None], axis=0)
    return float(np.mean(np.concatenate(fake_inside))), float(np.mean(real_inside))


def scores(real_features: np.ndarray, fake_features: np.ndarray) -> dict:
    """FID, precision and recall of `fake` against `real` features."""
    precision, recall = precision_recall(real_features, fake_features)
    return {"fid": fid(real_features, fake_features), "precision": precision, "recall": recall}


def evaluate_run(
    run: api.Run,
    features_workdir: str | Path,
    *,
    samples: int = SAMPLES,
    seed: int = 0,
    feature_epochs: int | None = None,
    sampler: str | None = None,
) -> dict:
    """FID, precision and recall of `samples` of `run`'s generations (seed `seed`, drawn from
    `sampler` as `Run.sample` draws them) against its dataset's test set, in the features of the
    network in `features_workdir` (trained there first if absent); with the feature network's
    test accuracy and the counts scored. A run that cannot sample is refused before anything
    trains."""
    generated = np.clip(run.sample(samples, seed=seed, sampler=sampler), 0, 1)
    net = feature_run(run.config.data, features_workdir, feature_epochs)
    test = sources.from_config(run.config.data, "test")
    result = scores(features(net, test.images), features(net, generated))
    return {
        **result,
        "samples": samples,
        "test_images": len(test),
        "feature_test_accuracy": float(net.metrics()[-1]["test/accuracy"]),
    }
