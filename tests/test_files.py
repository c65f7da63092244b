"""A user's own images: `.npz` files with or without a test split, folders of image files (class
subfolders, split subfolders, mixed sizes resized), and files that are missing, of the wrong
keys, unreadable or too large named before anything is decoded or trained."""

import struct
import warnings
import zlib

import numpy as np
import PIL.Image
import pytest
from conftest import load_config, shaped

import aejax
from aejax.data import files, sources
from aejax.training import loop


@pytest.fixture(scope="module")
def digits():
    """Real mnist5k digits and labels, stored uint8."""
    split = sources.dataset("mnist5k", "train")
    return split.images, split.labels


# --- .npz files -----------------------------------------------------------------------------


def test_npz_with_both_splits(tmp_path, digits):
    images, labels = digits
    path = tmp_path / "mine.npz"
    np.savez(
        path, x_train=images[:60], y_train=labels[:60], x_test=images[60:80], y_test=labels[60:80]
    )
    config = load_config("conv")
    config.data.path = str(path)
    train_split, test_split = (sources.from_config(config.data, s) for s in sources.SPLITS)
    np.testing.assert_array_equal(train_split.images, images[:60])
    np.testing.assert_array_equal(test_split.labels, labels[60:80])


def test_npz_without_test_split_holds_out_a_fraction(tmp_path, digits):
    path = tmp_path / "floats.npz"
    np.savez(path, x_train=digits[0][:100] / np.float32(255))  # float images, no labels
    config = load_config("conv")
    config.data.path, config.data.test_fraction = str(path), 0.2
    train_split, test_split = (sources.from_config(config.data, s) for s in sources.SPLITS)
    assert len(train_split) == 80 and len(test_split) == 20 and train_split.labels is None
    assert train_split.images.dtype == np.float32  # floats are kept, not quantised
    together = np.concatenate([train_split.images, test_split.images]).reshape(100, -1)
    assert len({row.tobytes() for row in together}) == 100  # disjoint, nothing lost
    np.savez(path, images=digits[0][:10])
    with pytest.raises(ValueError, match=r"holds \['images'\]; expected 'x_train'"):
        sources.from_config(config.data, "train")


def test_an_npz_is_not_resized_and_other_files_are_refused(tmp_path, digits):
    np.savez(tmp_path / "mine.npz", x_train=digits[0][:10])
    assert files.has_split(tmp_path / "mine.npz", "train")
    assert not files.has_split(tmp_path / "mine.npz", "test")
    with pytest.raises(ValueError, match=r"data.image_size resizes image files only"):
        files.load_path(tmp_path / "mine.npz", "train", image_size=16)
    (tmp_path / "mine.csv").write_text("0,0\n")
    with pytest.raises(ValueError, match=r"mine.csv: expected an .npz or .npy file or a folder of images"):
        files.load_path(tmp_path / "mine.csv", "train")


def test_training_from_an_npz_path(tmp_path, monkeypatch, digits):
    monkeypatch.setattr("aejax.evaluation.figures.write_figures", lambda *args, **kwargs: None)
    path = tmp_path / "colour.npz"
    np.savez(path, x_train=shaped(digits[0][:250], (32, 32, 3)))
    config = load_config("mlp")
    config.data.path = str(path)
    config.model.encoder_widths, config.train.epochs, config.train.batch_size = (8, 2), 1, 50
    state, row = loop.train_and_evaluate(config, tmp_path / "run")
    assert state.params["decoder"]["mlp"]["dense1"]["kernel"].shape == (8, 32 * 32 * 3)
    assert np.isfinite(row["test/loss"])


@pytest.mark.parametrize(
    "make, error, message",
    [
        (lambda p: None, FileNotFoundError, r"data.path .*missing does not exist; give an .npz or .npy file or a folder"),
        (lambda p: np.savez(p.with_suffix(".npz"), images=np.zeros((9, 4, 4, 1))), ValueError,
         r"missing.npz holds \['images'\]; expected 'x_train' \(images N x H x W x C\)"),
    ],
)  # fmt: skip
def test_a_missing_data_path_and_an_npz_with_the_wrong_keys_are_named(make, error, message, tmp_path):
    path = tmp_path / "missing"
    make(path)
    if path.with_suffix(".npz").exists():
        path = path.with_suffix(".npz")
    with pytest.raises(error, match=message):
        aejax.fit("mlp", workdir=tmp_path / "run", data__path=str(path))
    assert not (tmp_path / "run").exists()


# --- folders of image files -------------------------------------------------------------------


def write_pngs(folder, images, labels=None):
    for i, image in enumerate(images):
        sub = folder if labels is None else folder / f"class_{labels[i]}"
        sub.mkdir(parents=True, exist_ok=True)
        pixels = image[..., 0] if image.shape[-1] == 1 else image
        PIL.Image.fromarray(pixels).save(sub / f"{i:04d}.png")


def test_folder_with_splits_and_class_subfolders(tmp_path, digits):
    images, labels = digits[0][:40], digits[1][:40]
    write_pngs(tmp_path / "train", images[:30], labels[:30])
    write_pngs(tmp_path / "test", images[30:], labels[30:])
    split = sources.dataset("", "train", path=tmp_path)
    order = np.argsort(labels[:30], kind="stable")  # files come class by class
    np.testing.assert_array_equal(split.images, images[:30][order])
    classes = np.unique(labels[:30])
    np.testing.assert_array_equal(split.labels, np.searchsorted(classes, labels[:30][order]))
    assert split.num_classes == len(classes)


def test_flat_folder_of_colour_images_of_mixed_sizes(tmp_path, digits):
    colour = shaped(digits[0][:20], (32, 32, 3))
    write_pngs(tmp_path, colour[:19])
    PIL.Image.fromarray(colour[19]).resize((40, 48)).save(tmp_path / "big.png")
    with pytest.raises(ValueError, match="big.png is 40x48 but .* set data.image_size"):
        sources.dataset("", "train", path=tmp_path)
    split = sources.dataset("", "train", path=tmp_path, image_size=16, test_fraction=0.25)
    assert split.images.shape == (15, 16, 16, 3) and split.labels is None


def test_square_resize_takes_the_central_square(digits):
    """A 28x28 digit padded with 10 columns of white each side: its central square is the digit
    itself, which a resize to 28 gives back unchanged."""
    digit = digits[0][0]
    wide = np.pad(digit, ((0, 0), (10, 10), (0, 0)), constant_values=255)
    np.testing.assert_array_equal(files.square_resize(wide, 28), digit)
    assert files.square_resize(wide, 14).shape == (14, 14, 1)


def write_png_bomb(path, side: int):
    """A black 1-bit PNG of side x side pixels: a few kilobytes, side**2 bytes once decoded."""
    deflate = zlib.compressobj(9)
    row = bytes(1 + (side + 7) // 8)  # each row: its filter byte, then 8 pixels a byte
    idat = b"".join(deflate.compress(row) for _ in range(side)) + deflate.flush()

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body)
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)  # 1-bit grey, no interlace
    png = chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + png)


def test_a_decompression_bomb_is_refused_before_it_is_decoded(tmp_path, digits):
    write_pngs(tmp_path, digits[0][:3])
    bomb = tmp_path / "bomb.png"
    write_png_bomb(bomb, 9000)  # 81 million pixels, under Pillow's own bounds
    assert bomb.stat().st_size < 100_000
    with warnings.catch_warnings(), PIL.Image.open(bomb) as image:
        warnings.simplefilter("error")  # Pillow would decode it without a word
        assert image.size == (9000, 9000)
    refusal = (
        r"bomb.png is 9000x9000, 81,000,000 pixels, more than data.max_pixels=64,000,000; .*"
        r"Remove or replace the file, or set data.skip_bad_images=True"
    )
    with pytest.raises(ValueError, match=refusal):
        sources.dataset("", "train", path=tmp_path)
    with pytest.raises(ValueError, match=r"0000.png is 28x28, 784 pixels, more than .*=783"):
        sources.dataset("", "train", path=tmp_path, max_pixels=783)


def test_bad_image_files_are_named_or_left_out_and_counted(tmp_path, digits):
    images, labels = digits[0][:6], np.array([0, 0, 0, 1, 1, 1])
    write_pngs(tmp_path / "train", images, labels)  # class_0/0000.png ... class_1/0005.png
    write_pngs(tmp_path / "test", images[:2], labels[:2])
    (tmp_path / "train" / "class_0" / "0001a.png").write_text("not an image")
    write_png_bomb(tmp_path / "train" / "class_1" / "0003a.png", 20_000)  # Pillow refuses it too
    with pytest.raises(ValueError, match=r"0001a.png is not a readable image \(cannot identify"):
        sources.dataset("", "train", path=tmp_path)
    with pytest.warns(UserWarning, match=r"left out 2 of 8 image files, .*0001a.png first"):
        split = sources.dataset("", "train", path=tmp_path, skip_bad_images=True)
    np.testing.assert_array_equal(split.images, images)
    np.testing.assert_array_equal(split.labels, labels)  # each file keeps its own label
    (tmp_path / "icons").mkdir()  # a .png holding an icon: ICO is not a decoder aejax uses
    PIL.Image.fromarray(images[0, ..., 0]).save(tmp_path / "icons" / "0.png", format="ICO")
    with pytest.raises(ValueError, match="all 1 image files were left out"):
        sources.dataset("", "train", path=tmp_path / "icons", skip_bad_images=True, test_fraction=0.5)


def test_a_corrupt_image_in_a_folder_is_named(tmp_path):
    """Three flat grey squares stand in for a user's images: only the fourth file's fault
    matters, and it is no image at all."""
    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(3):
        PIL.Image.fromarray(np.full((8, 8), 40 * i, np.uint8)).save(folder / f"{i}.png")
    (folder / "3.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match=r"3.png is not a readable image .*Remove or replace the file"):
        aejax.fit("mlp", workdir=tmp_path / "run", data__path=str(folder))
    assert not (tmp_path / "run").exists()
