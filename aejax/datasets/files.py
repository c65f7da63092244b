"""A user's own images: a numpy `.npz` file, or a folder of image files (`config.data.path`).

An `.npz` holds `x_train` and optionally `y_train`, `x_test`, `y_test`: images (N, H, W, C) as
uint8 0..255 or float in [0, 1], labels as integer class indices.

A folder holds image files (PNG, JPEG, ... anything Pillow opens), either directly (no labels)
or one subfolder per class (labels are the positions of the training split's subfolders in
sorted order, so `test/` uses the same numbering). With `train/` and
`test/` subfolders those are the splits; otherwise the test split is held out by the caller.
Greyscale files give one channel, any other mode three (RGB). Images of different sizes need
`image_size`: each is then centre-cropped to a square and resized to that side.
"""

import os
from pathlib import Path

import numpy as np
import PIL.Image

from aejax.dataset import Dataset

NPZ_KEYS = {"train": ("x_train", "y_train"), "test": ("x_test", "y_test")}
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


def has_split(path: str | os.PathLike, split: str) -> bool:
    """Whether the file or folder at `path` holds `split` itself (else it is held out)."""
    path = _existing(path)
    if path.is_dir():
        return (path / split).is_dir()
    with np.load(path) as arrays:
        return NPZ_KEYS[split][0] in arrays.files


def load_path(
    path: str | os.PathLike, split: str | None, image_size: int | None = None
) -> Dataset:
    """The `split` of the .npz file or image folder at `path`; `None`: a folder's every image."""
    path = _existing(path)
    if path.is_dir():
        return _load_folder(path, split, image_size)
    if path.suffix != ".npz":
        raise ValueError(f"data.path {path}: expected an .npz file or a folder of images")
    if image_size:
        raise ValueError(f"data.image_size resizes image files only; resize the arrays of {path}")
    return _load_npz(path, split or "train")


def _existing(path: str | os.PathLike) -> Path:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"data.path {path} does not exist; give an .npz file or a folder")
    return path


def _load_npz(path: Path, split: str) -> Dataset:
    x_key, y_key = NPZ_KEYS[split]
    with np.load(path) as arrays:
        if x_key not in arrays.files:
            raise ValueError(
                f"{path} holds {sorted(arrays.files)}; expected {x_key!r} (images N x H x W x C)"
                f" and optionally {y_key!r} (labels N)"
            )
        labels = arrays[y_key] if y_key in arrays.files else None
        return Dataset(arrays[x_key], labels, name=f"{path.name}:{x_key}")


def _load_folder(root: Path, split: str | None, image_size: int | None) -> Dataset:
    folder = root / split if split and (root / split).is_dir() else root
    classes = _class_names(root / "train" if (root / "train").is_dir() else folder)
    if classes:
        files, labels = [], []
        for label, name in enumerate(classes):  # a split may lack a class: a small test set
            found = _image_files(folder / name) if (folder / name).is_dir() else []
            files += found
            labels += [label] * len(found)
        labels = np.array(labels, np.int32)
    else:
        files, labels = _image_files(folder), None
    if not files:
        raise FileNotFoundError(f"{folder} holds no image files ({', '.join(IMAGE_SUFFIXES)})")
    images = _read_images(files, image_size)
    return Dataset(images, labels, len(classes) or None, name=str(folder))


def _class_names(folder: Path) -> list[str]:
    splits = ("train", "test")
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and p.name not in splits)


def _image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def _read_images(files: list[Path], image_size: int | None) -> np.ndarray:
    """uint8 [N, H, W, C]: all grey (C = 1) or all RGB (C = 3), all of one size."""
    with _open(files[0]) as first:
        mode = "L" if first.mode in ("1", "L", "I;16", "I") else "RGB"
    images = []
    for file in files:
        with _open(file) as image:
            pixels = np.asarray(image.convert(mode))
        if image_size:
            pixels = square_resize(pixels, image_size)
        elif images and pixels.shape != images[0].shape:
            raise ValueError(
                f"{file} is {pixels.shape[1]}x{pixels.shape[0]} but {files[0]} is "
                f"{images[0].shape[1]}x{images[0].shape[0]}; set data.image_size to resize all"
            )
        images.append(pixels)
    images = np.stack(images)
    return images[..., None] if images.ndim == 3 else images


def _open(file: Path) -> PIL.Image.Image:
    """The image in `file`, or an error naming the file that Pillow cannot read."""
    try:
        return PIL.Image.open(file)
    except (PIL.UnidentifiedImageError, OSError) as e:
        raise ValueError(
            f"{file} is not an image Pillow can read ({type(e).__name__}); replace it or move it "
            "out of the folder"
        ) from None


def square_resize(image_HxWxC: np.ndarray, side: int) -> np.ndarray:
    """The central square of an image, resized to `side` x `side` (bilinear, antialiased)."""
    h, w = image_HxWxC.shape[:2]
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    square = np.ascontiguousarray(image_HxWxC[top : top + s, left : left + s])
    grey = square.ndim == 3 and square.shape[2] == 1
    resized = PIL.Image.fromarray(square[..., 0] if grey else square).resize(
        (side, side), PIL.Image.BILINEAR
    )
    pixels = np.asarray(resized)
    return pixels[..., None] if grey else pixels
