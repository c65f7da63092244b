"""A user's own data: a numpy `.npz` or `.npy` file, or a folder of image files
(`config.data.path`).

An `.npz` holds `x_train` and optionally `y_train`, `x_test`, `y_test`: images (N, H, W, C) as
uint8 0..255 or float in [0, 1], or float vectors (N, D); labels as integer class indices.
An `.npy` holds one array of images or vectors, unlabelled, of which a test split is held out.

A folder holds image files (PNG, JPEG, BMP, GIF, TIFF, WebP, PPM/PGM), either directly (no
labels) or one subfolder per class (labels are the positions of the training split's subfolders
in sorted order, so `test/` uses the same numbering). With `train/` and `test/` subfolders
those are the splits; otherwise the test split is held out by the caller.
Greyscale files give one channel, any other mode three (RGB). Images of different sizes need
`image_size`: each is then centre-cropped to a square and resized to that side.

Each file's size is read from its header and bounded (`max_pixels`) before its pixels are
decoded: Pillow only warns below about 179 million pixels, and a file of a few kilobytes can
claim that many. A file that is too large or not a readable image refuses the folder, naming
it, or with `skip_bad_images` is left out and counted in a warning.
"""

import os
import warnings
from pathlib import Path

import numpy as np
import PIL.Image

from aejax.data.dataset import Dataset

NPZ_KEYS = {"train": ("x_train", "y_train"), "test": ("x_test", "y_test")}
# File suffix -> the Pillow decoder it is opened with; no other decoder reads a user's files.
IMAGE_SUFFIXES = {
    ".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".bmp": "BMP", ".gif": "GIF", ".tif": "TIFF",
    ".tiff": "TIFF", ".webp": "WEBP", ".ppm": "PPM", ".pgm": "PPM",
}  # fmt: skip
_DECODERS = tuple(dict.fromkeys(IMAGE_SUFFIXES.values()))
MAX_PIXELS = 64_000_000  # per image file: decoded, 64 MB grey or 192 MB RGB


def has_split(path: str | os.PathLike, split: str) -> bool:
    """Whether the file or folder at `path` holds `split` itself (else it is held out)."""
    path = _existing(path)
    if path.is_dir():
        return (path / split).is_dir()
    if path.suffix == ".npy":
        return False
    with np.load(path) as arrays:
        return NPZ_KEYS[split][0] in arrays.files


def load_path(
    path: str | os.PathLike,
    split: str | None,
    image_size: int | None = None,
    *,
    max_pixels: int = MAX_PIXELS,
    skip_bad_images: bool = False,
) -> Dataset:
    """The `split` of the .npz file or image folder at `path`; `None`: a folder's every image."""
    path = _existing(path)
    if path.is_dir():
        return _load_folder(path, split, image_size, max_pixels, skip_bad_images)
    if path.suffix not in (".npz", ".npy"):
        raise ValueError(f"data.path {path}: expected an .npz or .npy file or a folder of images")
    if image_size:
        raise ValueError(f"data.image_size resizes image files only; resize the arrays of {path}")
    if path.suffix == ".npy":
        return Dataset(np.load(path), name=path.name)
    return _load_npz(path, split or "train")


def _existing(path: str | os.PathLike) -> Path:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(
            f"data.path {path} does not exist; give an .npz or .npy file or a folder"
        )
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


def _load_folder(
    root: Path, split: str | None, image_size: int | None, max_pixels: int, skip_bad: bool
) -> Dataset:
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
    images, kept = _read_images(files, image_size, max_pixels, skip_bad)
    labels = labels[kept] if labels is not None else None
    return Dataset(images, labels, len(classes) or None, name=str(folder))


def _class_names(folder: Path) -> list[str]:
    splits = ("train", "test")
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and p.name not in splits)


def _image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


class _BadImage(Exception):
    """An image file that is not decoded: too large, or not a readable image."""


def _read_images(
    files: list[Path], image_size: int | None, max_pixels: int, skip_bad: bool
) -> tuple[np.ndarray, list[int]]:
    """uint8 [N, H, W, C] of the readable files, all grey (C = 1) or all RGB (C = 3), all of one
    size (the first readable file sets both); and their positions in `files`."""
    images, kept, skipped = [], [], []
    mode = None
    for i, file in enumerate(files):
        try:
            pixels, mode = _decode(file, mode, max_pixels)
        except _BadImage as bad:
            if not skip_bad:
                raise ValueError(
                    f"{bad}. Remove or replace the file, or set data.skip_bad_images=True to "
                    "leave such files out"
                ) from bad.__cause__
            skipped.append(file)
            continue
        if image_size:
            pixels = square_resize(pixels, image_size)
        elif images and pixels.shape != images[0].shape:
            first = files[kept[0]]
            raise ValueError(
                f"{file} is {pixels.shape[1]}x{pixels.shape[0]} but {first} is "
                f"{images[0].shape[1]}x{images[0].shape[0]}; set data.image_size to resize all"
            )
        images.append(pixels)
        kept.append(i)
    if not images:
        raise ValueError(
            f"all {len(files)} image files were left out (data.skip_bad_images), {files[0]} "
            f"among them: none is a readable image of at most data.max_pixels={max_pixels:,}"
        )
    if skipped:
        warnings.warn(
            f"left out {len(skipped)} of {len(files)} image files, larger than data.max_pixels="
            f"{max_pixels:,} or not readable images (data.skip_bad_images), {skipped[0]} first",
            stacklevel=2,
        )
    images = np.stack(images)
    return (images[..., None] if images.ndim == 3 else images), kept


def _decode(file: Path, mode: str | None, max_pixels: int) -> tuple[np.ndarray, str]:
    """The pixels of `file` in `mode`, and the mode; `None`: grey ("L") or RGB as the file is."""
    try:
        with PIL.Image.open(file, formats=_DECODERS) as image:
            width, height = image.size  # from the header: nothing is decoded yet
            if width * height > max_pixels:
                raise _BadImage(
                    f"{file} is {width}x{height}, {width * height:,} pixels, more than "
                    f"data.max_pixels={max_pixels:,}; if it is meant to be read, raise that bound"
                )
            mode = mode or ("L" if image.mode in ("1", "L", "I;16", "I") else "RGB")
            return np.asarray(image.convert(mode)), mode
    except (OSError, PIL.Image.DecompressionBombError) as err:  # Pillow's faults for bad files
        raise _BadImage(f"{file} is not a readable image ({err})") from err


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
