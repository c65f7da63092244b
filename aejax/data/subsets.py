"""Stratified labelled subsets: a fraction of each class, the same for every seed."""

import numpy as np


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
