"""Faults around a run: divergence, damaged run files, a full disk, bad settings, bad inputs.

Each test injects the fault into a real run on mnist5k (a learning rate that jumps at a chosen
step, files overwritten or cut short, a disk filled up) and checks the run names it and, where
it can, recovers to the same parameters as a run that never met it. A bad input (data of the
wrong layout, a workdir reused with other data) is one clear message that leaves the workdir as
it was.
"""

import errno
import json
import re
import shutil
import subprocess
import uuid
from pathlib import Path

import chex
import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import PIL.Image
import pytest
from conftest import load_config, tiny_config
from etils import epath
from test_sources import IDX_FILES, write_idx

import aejax
from aejax import configs
from aejax.data import sources
from aejax.data.builders import AejaxMnist
from aejax.training import checkpoint, finite_guard, loop, validate
from aejax.training.state import create_state


def _config(**overrides):
    """10 steps an epoch, 2 epochs, a checkpoint every 5 steps (one chunk)."""
    return tiny_config(
        "vae", train__batch_size=400, train__chunk=5, train__save_every_steps=5, **overrides
    )


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """An uninterrupted run's final parameters, and a run stopped at step 15 (checkpoints 5,
    10 and 15, the first epoch's metrics line) to copy and damage."""
    root = tmp_path_factory.mktemp("runs")
    whole, _ = loop.train_and_evaluate(_config(), root / "whole")
    loop.train_and_evaluate(_config(), root / "cut", max_steps=15)
    return root / "cut", whole.params


def _copy(cut, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(cut, run)
    return run


def _saved_states(workdir):
    with checkpoint.manager(workdir, 3) as mngr:
        return {s: mngr.restore(s, args=ocp.args.StandardRestore()) for s in mngr.all_steps()}


@pytest.mark.slow
def test_diverged_run_saves_nothing_non_finite_and_resumes_with_a_lower_lr(tmp_path):
    # From step 7 on the learning rate is multiplied by 1e6: the run diverges within a few steps.
    config = _config(opt__lr_boundaries=(6,), opt__lr_decay=1e6)
    named = r"diverged at step (7|8|9|10) .*checkpoint, step 5 .*--resume_changes=opt.lr"
    with pytest.raises(finite_guard.TrainingDiverged, match=named):
        loop.train_and_evaluate(config, tmp_path)
    saved = _saved_states(tmp_path)
    assert sorted(saved) == [5]
    assert all(np.isfinite(leaf).all() for leaf in jax.tree.leaves(saved))
    assert checkpoint.read_metrics(tmp_path) == []

    config.opt.lr = 1e-9  # the same jump now lands on 1e-3
    with pytest.raises(ValueError, match=r"opt.lr: 0.001 -> 1e-09.*--resume_changes=opt.lr"):
        loop.train_and_evaluate(config, tmp_path)
    state, row = loop.train_and_evaluate(config, tmp_path, resume_changes=("opt.lr",))
    assert int(state.step) == 20 and np.isfinite(row["test/loss"])
    assert all(np.isfinite(leaf).all() for leaf in jax.tree.leaves(state.params))
    log = (tmp_path / checkpoint.CHANGES_FILE).read_text().splitlines()
    changes = [json.loads(line) for line in log]
    assert changes == [{"step": 5, "changes": {"opt.lr": [0.001, 1e-9]}}]


def test_resume_changes_outside_the_resumable_fields_are_refused(tmp_path):
    with pytest.raises(ValueError, match=r"\['model.latent_dim'\], which a resumed run cannot"):
        loop.train_and_evaluate(_config(), tmp_path, resume_changes=("model.latent_dim",))


@pytest.mark.slow
def test_torn_metrics_line_is_dropped_with_a_warning_and_rewritten(runs, tmp_path):
    cut, whole_params = runs
    run = _copy(cut, tmp_path)
    with open(run / checkpoint.METRICS_FILE, "a") as f:
        f.write('{"epoch": 2, "step": 20, "train/lo')  # the write a full disk cut short
    with pytest.warns(UserWarning, match=r"metrics.jsonl line 2 is damaged and was dropped"):
        state, _ = loop.train_and_evaluate(_config(), run)
    assert [r["epoch"] for r in checkpoint.read_metrics(run)] == [1, 2]
    chex.assert_trees_all_equal(state.params, whole_params)


def test_corrupt_config_json_is_named_with_what_to_do(runs, tmp_path):
    run = _copy(runs[0], tmp_path)
    (run / checkpoint.CONFIG_FILE).write_text('{"data": {"name": "mnis')
    named = rf"{re.escape(str(run / 'config.json'))} is damaged .*delete .*new --workdir"
    with pytest.raises(ValueError, match=named):
        loop.train_and_evaluate(_config(), run)


def _overwrite_files(directory):
    for path in directory.rglob("*"):
        if path.is_file():
            path.write_bytes(b"\x00garbage" * 7)


def test_unreadable_newest_checkpoint_gives_way_to_the_previous_one(runs, tmp_path):
    cut, whole_params = runs
    run = _copy(cut, tmp_path)
    _overwrite_files(run / "checkpoints" / "15")
    with pytest.warns(UserWarning, match=r"checkpoint 15 .* cannot be read .* from checkpoint 10"):
        state, _ = loop.train_and_evaluate(_config(), run)
    assert (run / checkpoint.DAMAGED_DIR / "15").is_dir()
    chex.assert_trees_all_equal(state.params, whole_params)


def test_no_readable_checkpoint_is_refused_and_nothing_is_moved(runs, tmp_path):
    run = _copy(runs[0], tmp_path)
    _overwrite_files(run / "checkpoints")
    refused = r"no checkpoint in .* can be read \(checkpoint 15: .*move that folder aside"
    with pytest.raises(ValueError, match=refused):
        loop.train_and_evaluate(_config(), run)
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["10", "15", "5"]


def test_disk_full_inside_orbax_writer_is_one_clear_error(tmp_path, monkeypatch):
    mngr = checkpoint.manager(tmp_path, 3)
    state = {"w": jnp.arange(1000.0)}
    checkpoint.save(mngr, 1, state)

    def full(path, *args, **kwargs):  # every file Orbax writes through epath meets a full disk
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    with monkeypatch.context() as patch:
        patch.setattr(epath.Path, "write_text", full)
        named = r"disk is full: checkpoint 2 .*partial files were removed; checkpoint 1 is intact"
        with pytest.raises(OSError, match=named) as error:
            checkpoint.save(mngr, 2, state)
    assert error.value.errno == errno.ENOSPC
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["1"]
    mngr.close()
    (tmp_path / "checkpoints" / "2.orbax-checkpoint-tmp").mkdir()  # as a killed save leaves it
    with checkpoint.manager(tmp_path, 3) as reader:  # a reader leaves it: it may be a live save
        np.testing.assert_array_equal(checkpoint.restore_latest(reader, state)["w"], state["w"])
    assert "2.orbax-checkpoint-tmp" in {p.name for p in (tmp_path / "checkpoints").iterdir()}
    with checkpoint.manager(tmp_path, 3, writer=True) as reopened:  # the run resuming removes it
        np.testing.assert_array_equal(checkpoint.restore_latest(reopened, state)["w"], state["w"])
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["1"]


@pytest.fixture
def small_disk(tmp_path):
    """A 4 MiB tmpfs (needs root and a kernel that allows it; skipped elsewhere)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    command = ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)]
    if subprocess.run(command, capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here; the mocked writer test covers the disk-full path")
    yield mount
    subprocess.run(["umount", "--lazy", str(mount)], check=True)  # lazy: files a failure left open


@pytest.mark.slow
def test_full_disk_stops_with_one_error_and_the_run_resumes_after(runs, small_disk):
    cut, whole_params = runs
    run = _copy(cut, small_disk)
    filler = small_disk / f"filler-{uuid.uuid4().hex}"
    with open(filler, "wb") as f:  # fill the disk but for 100 KiB: a checkpoint needs 600
        f.write(b"\0" * (shutil.disk_usage(small_disk).free - 100 * 1024))
    with pytest.raises(OSError, match=r"disk is full: checkpoint 20 .*checkpoint 15 is intact"):
        loop.train_and_evaluate(_config(), run)
    filler.unlink()
    state, _ = loop.train_and_evaluate(_config(), run)
    chex.assert_trees_all_equal(state.params, whole_params)


def test_every_shipped_config_is_valid():
    for name in configs.names():
        validate.config(load_config(name))


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"model__latent_dim": 0}, r"model.latent_dim=0 must be a positive integer"),
        ({"model__encoder_widths": (32, -8)}, r"encoder_widths=\(32, -8\) must be a non-empty"),
        ({"opt__lr": float("nan")}, r"opt.lr=nan must be a positive finite number"),
        ({"train__epochs": 0}, r"train.epochs=0 must be a positive integer"),
        ({"loss__kl_weight": -1.0}, r"loss.kl_weight=-1.0 must be a finite number >= 0"),
        ({"data__max_pixels": 0}, r"data.max_pixels=0 must be a positive integer"),
    ],
)
def test_bad_values_are_named_before_any_work(tmp_path, overrides, message):
    with pytest.raises(ValueError, match=message):
        loop.train_and_evaluate(_config(**overrides), tmp_path / "run")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "name, field, value, message",
    [
        ("denoising", "factor", -0.5, r"loss.corruption.factor=-0.5 must be a finite number >= 0"),
        ("denoising_masking", "keep_prob", 1.5, r"keep_prob=1.5 must be a probability in \[0, 1\]"),
        ("denoising_salt_pepper", "fraction", -0.1, r"fraction=-0.1 must be a probability"),
    ],
)
def test_noise_levels_and_probabilities_out_of_range_are_named(name, field, value, message):
    config = load_config(name)
    config.loss.corruption[field] = value
    with pytest.raises(ValueError, match=message):
        validate.config(config)


def test_sparsity_target_and_penalty_weights_are_checked():
    config = load_config("sparse")
    config.loss.regularizers.kl_sparsity.target = 1.0
    config.loss.regularizers.kl_sparsity.weight = -0.2
    with pytest.raises(ValueError, match=r"target=1.0 must be a rate strictly .*weight=-0.2 must"):
        validate.config(config)


@pytest.mark.parametrize("max_steps", [0, -5])
def test_max_steps_below_one_is_refused(tmp_path, max_steps):
    with pytest.raises(ValueError, match=rf"max_steps={max_steps} must be at least 1"):
        loop.train_and_evaluate(_config(), tmp_path, max_steps=max_steps)


def test_workdir_naming_a_file_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("not a run")
    for workdir in (tmp_path / "notes.txt", tmp_path / "notes.txt" / "run"):
        with pytest.raises(ValueError, match=r"notes.txt is a file, not a directory"):
            loop.train_and_evaluate(_config(), workdir)


def test_nothing_in_the_package_unpickles():
    """Workdirs are read as data: nothing in the package unpickles, numpy's `np.load` included."""
    package = Path(aejax.__file__).parent
    sources = sorted(package.rglob("*.py"))
    assert len(sources) > 30  # the walk found the package
    uses = [
        f"{path}:{number}"
        for path in sources
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if "pickle" in line.lower()
    ]
    assert not uses, f"pickle (or allow_pickle=True) in {uses}"


@pytest.fixture(scope="module")
def digits():
    """400 training and 100 test images of mnist5k, with labels."""
    (x, y), (x_test, y_test) = (sources.load("mnist5k", split) for split in sources.SPLITS)
    return (x[:400], y[:400]), (x_test[:100], y_test[:100])


def test_channels_first_images_are_refused_naming_the_transpose(digits, tmp_path):
    (x, _), _ = digits
    with pytest.raises(ValueError, match=r"\(400, 1, 28, 28\) look channels-first .*transpose\(0, 2, 3, 1\)"):
        aejax.fit("mlp", train=x.transpose(0, 3, 1, 2), workdir=tmp_path / "run")
    assert not (tmp_path / "run").exists()


def _snapshot(workdir) -> dict:
    """Every file under `workdir` and its bytes: what a refused resume must leave as it was."""
    return {p.relative_to(workdir): p.read_bytes() for p in sorted(workdir.rglob("*")) if p.is_file()}


def test_a_completed_workdir_reused_with_other_data_is_refused_and_left_as_it_was(digits, tmp_path):
    (x, y), (x_test, _) = digits
    workdir = tmp_path / "run"
    run = aejax.fit("mlp", train=(x, y), test=x_test, workdir=workdir, train__epochs=1,
                    train__batch_size=100, model__encoder_widths=(8,))  # fmt: skip
    recorded = json.loads((workdir / checkpoint.DATA_FILE).read_text())
    assert recorded["train"]["shape"] == [400, 28, 28, 1] and recorded["train"]["labels"]
    assert recorded["test"]["dtype"] == "float32" and not recorded["test"]["labels"]
    before = _snapshot(workdir)
    other = (x[::-1], y[::-1])  # the same images in another order: other content, same shape
    refused = r"trained on other data \(train: 400x28x28x1 float32 with labels, sha256 .*-> .*new --workdir.*--resume_changes=data \(in Python: resume_changes=\('data',\)\)"
    with pytest.raises(ValueError, match=refused):
        aejax.fit("mlp", train=other, test=x_test, workdir=workdir, train__epochs=1,
                  train__batch_size=100, model__encoder_widths=(8,))  # fmt: skip
    assert _snapshot(workdir) == before
    more = aejax.fit("mlp", train=other, test=x_test, workdir=workdir, train__epochs=2,
                     train__batch_size=100, model__encoder_widths=(8,),
                     resume_changes=("data", "train.epochs"))  # fmt: skip
    assert [r["epoch"] for r in more.metrics()] == [1, 2]
    assert not np.array_equal(jax.tree.leaves(more.params)[0], jax.tree.leaves(run.params)[0])
    [logged] = [json.loads(line) for line in (workdir / checkpoint.CHANGES_FILE).read_text().splitlines()]
    assert logged["step"] == 4 and set(logged["changes"]) == {"data", "train.epochs"}


def test_an_interrupted_streamed_run_resumed_with_other_data_is_refused(tmp_path, monkeypatch):
    """`mnist` streamed from files prepared from one folder of IDX files, resumed where the
    prepared files came from other ones (another $AEJAX_DATA_DIR)."""
    md5 = {}  # each folder's digests stand in for the originals', which synthetic files lack
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        rng, md5[name] = np.random.default_rng(len(name) + ord(name)), {}
        for (images_name, labels_name), n in zip(IDX_FILES.values(), [40, 20]):
            images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
            md5[name][images_name] = write_idx(tmp_path / name / images_name, images)
            labels = rng.integers(0, 10, n).astype(np.uint8)
            md5[name][labels_name] = write_idx(tmp_path / name / labels_name, labels)
    config = tiny_config("mlp", data__name="mnist", data__stream="always", train__batch_size=10)
    workdir = tmp_path / "run"
    for name in ("a", "b"):
        monkeypatch.setattr(AejaxMnist, "MD5", md5[name])
        monkeypatch.setenv("AEJAX_IDX_DIR", str(tmp_path / name))
        monkeypatch.setenv("AEJAX_DATA_DIR", str(tmp_path / name / "prepared"))
        if name == "a":
            loop.train_and_evaluate(config, workdir, max_steps=2)
            before = _snapshot(workdir)
    with pytest.raises(ValueError, match=r"trained on other data \(test: .* -> .*; train: 40x28x28x1 uint8"):
        loop.train_and_evaluate(config, workdir)
    assert _snapshot(workdir) == before


def test_a_misspelt_fit_keyword_is_one_short_message_with_the_nearest_field(digits, tmp_path):
    with pytest.raises(ValueError) as error:
        aejax.fit("mlp", train=digits[0], workdir=tmp_path / "run", opt__lrr=0.1)
    assert str(error.value) == (
        "the config has no field opt.lrr (opt__lrr); did you mean opt.lr? `aejax show CONFIG` "
        "lists a config's fields"
    )
    assert not (tmp_path / "run").exists()


def test_a_part_swapped_in_needs_its_fields_and_any_config_can_set_them():
    config = load_config("vae")
    config.model.encoder = "resnet"
    with pytest.raises(ValueError, match=r"a resnet encoder needs model.encoder_features, which this config leaves unset: set it, e.g. --config.model.encoder_features='\(16,32\)'"):
        validate.config(config) or create_state(config, np.zeros((1, 28, 28, 1), np.float32))
    config.model.encoder_features = (4, 8)
    state = create_state(config, np.zeros((1, 28, 28, 1), np.float32))
    assert "encoder" in state.params and "mu_head" in state.params


def test_unknown_dataset_names_and_paths_are_one_short_message(tmp_path):
    with pytest.raises(ValueError, match=r"^Unknown dataset 'mnits': .*did you mean 'mnist'") as error:
        sources.load("mnits", "train")
    assert len(str(error.value)) < 300 and error.value.__cause__ is None
    with pytest.raises(FileNotFoundError, match=r"^data.path mine.npz does not exist"):
        sources.load("mine.npz", "train")
    np.savez(tmp_path / "mine.npz", x_train=np.zeros((20, 4, 4, 1), np.uint8))
    images, labels = sources.load(str(tmp_path / "mine.npz"), "train")  # a file given as the name
    assert images.shape == (18, 4, 4, 1) and labels is None


def test_a_tfds_dataset_that_is_not_prepared_names_how_to_prepare_it():
    with pytest.raises(RuntimeError, match=r"^TFDS dataset 'cifar10' \(train\) is not prepared as array_record in .*`tfds build cifar10 --file_format=array_record"):
        sources.load("cifar10", "train")


@pytest.mark.parametrize(
    "make, error, message",
    [
        (lambda p: None, FileNotFoundError, r"data.path .*missing does not exist; give an .npz file or a folder"),
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


def test_a_corrupt_image_in_a_folder_is_named(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(3):
        PIL.Image.fromarray(np.full((8, 8), 40 * i, np.uint8)).save(folder / f"{i}.png")
    (folder / "3.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match=r"3.png is not a readable image .*Remove or replace the file"):
        aejax.fit("mlp", workdir=tmp_path / "run", data__path=str(folder))
    assert not (tmp_path / "run").exists()


def test_a_run_refuses_codes_of_the_wrong_size_and_prints_as_one_line(digits, tmp_path):
    (x, _), (x_test, _) = digits
    run = aejax.fit("mlp", train=x[:200], workdir=tmp_path, train__epochs=1, train__batch_size=90,
                    model__encoder_widths=(8,))  # fmt: skip
    with pytest.raises(ValueError, match=r"z has shape \(2, 5\); this run's decoder takes codes \[N, 8\], as run.encode gives them"):
        run.decode(np.zeros((2, 5)))
    assert run.decode(run.encode(x_test[:2])).shape == (2, 28, 28, 1)
    text = repr(run)
    assert text == f"Run({str(tmp_path)!r}: mlp on arrays, {784 * 8 + 8 + 8 * 784 + 784:,} parameters, 1 epochs)"


def test_sampling_a_vqvae_points_to_its_prior(tiny, digits, tmp_path):
    (x, _), _ = digits
    run = aejax.fit(tiny("vqvae", train__chunk=1), train=x[:100], workdir=tmp_path, train__epochs=1, train__batch_size=50)
    with pytest.raises(TypeError, match=r"VQ-VAE's codes have no N\(0, I\) prior.*aejax.fit\('vqvae_prior', train__init_from="):
        run.sample(4)
