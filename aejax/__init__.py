"""aejax: the autoencoder family in JAX/Flax.

The Python API (`aejax/api.py`): `fit` trains a config and returns its `Run`, `load_run` reads a
trained one back; `Dataset` holds images and labels of any shape (`aejax/dataset.py`). Importing aejax changes nothing in the process: the XLA flag it runs with is
set when a run starts (`aejax.xla_flags`), and figures never select a matplotlib backend.
"""

from aejax.api import Run, fit, load_run
from aejax.dataset import Dataset

__all__ = ["Dataset", "Run", "fit", "load_run"]
