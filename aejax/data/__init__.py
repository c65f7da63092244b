"""The data: `Dataset` (`dataset.py`) holds images and labels whatever their source;
`sources.py` finds a dataset by name or path (aejax's TFDS builders in `builders.py`, image
files in `files.py`, TFDS's own datasets in `tfds_images.py`); a training set lives on the
device or streams from disk (`stream.py`); `binarize.py` and `subsets.py` change what is read.

`aejax.data.load(name, split)` and `aejax.data.Dataset` are the two a notebook needs.
"""

from aejax.data.dataset import Dataset

__all__ = ["DATASETS", "Dataset", "load"]


def __getattr__(name: str):
    """`load` and `DATASETS` of `sources.py`, imported when first used, so that the modules
    that need only `Dataset` do not import TFDS."""
    if name in ("load", "DATASETS"):
        from aejax.data import sources

        return getattr(sources, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
