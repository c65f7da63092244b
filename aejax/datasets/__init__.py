"""Where images come from: aejax's TFDS builders and IDX reader, a user's .npz files and image
folders (`files`), and TFDS's own image datasets (`tfds_images`); `aejax.data` picks one."""

from aejax.datasets.builders import AejaxFashionMnist as AejaxFashionMnist
from aejax.datasets.builders import AejaxMnist as AejaxMnist
from aejax.datasets.builders import AejaxMnist5k as AejaxMnist5k
from aejax.datasets.builders import DatasetUnavailableError as DatasetUnavailableError
from aejax.datasets.idx import read_idx as read_idx
