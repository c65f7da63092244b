"""aejax: the autoencoder family in JAX/Flax.

The Python API (`aejax/api.py`): `fit` trains a config and returns its `Run`, `load_run` reads a
trained one back; `Dataset` holds images and labels of any shape (`aejax/data/dataset.py`).
Importing aejax changes nothing in the process: its XLA:CPU setting is an option of each
compilation (`aejax/compiled.py`), not an environment variable, and figures never select a
matplotlib backend.
"""

from aejax.api import Run, fit, load_run
from aejax.data.dataset import Dataset

__all__ = ["Dataset", "Run", "fit", "load_run"]
