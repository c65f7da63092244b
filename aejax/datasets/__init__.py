"""aejax's own datasets: the IDX reader and the TFDS builders behind `aejax.data.load`."""

from aejax.datasets.builders import AejaxFashionMnist as AejaxFashionMnist
from aejax.datasets.builders import AejaxMnist as AejaxMnist
from aejax.datasets.builders import AejaxMnist5k as AejaxMnist5k
from aejax.datasets.builders import DatasetUnavailableError as DatasetUnavailableError
from aejax.datasets.idx import read_idx as read_idx
