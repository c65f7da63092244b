"""The run directory: a workdir belongs to one config and one dataset, resumes exactly, and
survives damage from outside (a torn metrics line, an overwritten config or checkpoint, a full
disk) by naming it and, where it can, recovering to the parameters of a run that never met it.
Workdirs written by earlier versions of aejax resume too.

The faults are injected into real runs on mnist5k: files overwritten or cut short, a disk
filled up. A refused resume leaves the workdir as it was.
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
import pytest
from conftest import load_config, tiny_config, write_idx
from etils import epath
from flax.training import train_state

import aejax
from aejax.data import sources
from aejax.data.builders import IDX_FILES, AejaxMnist
from aejax.evaluation import figures
from aejax.models import factory
from aejax.training import checkpoint, loop, parallel
from aejax.training.state import create_state


def _config(**overrides):
    """10 steps an epoch, 2 epochs, a checkpoint every 5 steps (one chunk)."""
    return tiny_config(
        "vae", train__batch_size=400, train__chunk=5, train__save_every_steps=5, **overrides
    )


@pytest.fixture(autouse=True)
def no_figures(monkeypatch):
    """Runs here are judged by their files and parameters; test_figures checks the figures."""
    monkeypatch.setattr(figures, "write_figures", lambda *args, **kwargs: None)


@pytest.fixture(scope="module")
def cut(tmp_path_factory):
    """A run stopped at step 15 (checkpoints 5, 10 and 15, the first epoch's metrics line) to
    copy and damage."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(figures, "write_figures", lambda *args, **kwargs: None)
        workdir = tmp_path_factory.mktemp("cut")
        loop.train_and_evaluate(_config(), workdir, max_steps=15)
    return workdir


@pytest.fixture(scope="module")
def whole_params(tmp_path_factory):
    """The final parameters of the same run, never interrupted: where a recovery must arrive."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(figures, "write_figures", lambda *args, **kwargs: None)
        whole, _ = loop.train_and_evaluate(_config(), tmp_path_factory.mktemp("whole"))
    return whole.params


def _copy(cut, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(cut, run)
    return run


# --- the files of a workdir --------------------------------------------------------------------


def test_metrics_rows_are_appended_read_back_and_cut_at_a_step(tmp_path):
    assert checkpoint.read_metrics(tmp_path) == []  # no log yet
    rows = [{"epoch": e, "step": 10 * e, "train/loss": 1.0 / e} for e in (1, 2, 3)]
    for row in rows:
        checkpoint.append_metrics(tmp_path, row)
    assert checkpoint.read_metrics(tmp_path) == rows
    checkpoint.truncate_metrics(tmp_path, 20)  # a run resumed from checkpoint 20
    assert checkpoint.read_metrics(tmp_path) == rows[:2]


def test_a_config_is_flattened_to_dotted_fields():
    flat = checkpoint.flatten({"model": {"name": "vae", "widths": [1, 2]}, "seed": 0})
    assert flat == {"model.name": "vae", "model.widths": [1, 2], "seed": 0}
    config = load_config("vae")
    flat = checkpoint.flatten(config.to_dict())
    assert flat["opt.lr"] == config.opt.lr and flat["model.latent_dim"] == 20


def test_a_workdir_of_another_config_is_refused_naming_the_difference(tmp_path):
    config = tiny_config("mlp")
    assert checkpoint.claim_workdir(tmp_path, config) == {}
    assert checkpoint.claim_workdir(tmp_path, config) == {}  # the same config: resumes
    config.opt.lr = 0.5
    refused = r"different config \(opt.lr: 0.001 -> 0.5\).*--resume_changes=opt.lr"
    with pytest.raises(ValueError, match=refused):
        checkpoint.claim_workdir(tmp_path, config)
    assert json.loads((tmp_path / checkpoint.CONFIG_FILE).read_text())["opt"]["lr"] == 0.001
    changes = checkpoint.claim_workdir(tmp_path, config, resume_changes=("opt.lr",))
    assert changes == {"opt.lr": (0.001, 0.5)}
    assert json.loads((tmp_path / checkpoint.CONFIG_FILE).read_text())["opt"]["lr"] == 0.5


def test_resume_changes_outside_the_resumable_fields_are_refused(tmp_path):
    with pytest.raises(ValueError, match=r"\['model.latent_dim'\], which a resumed run cannot"):
        checkpoint.claim_workdir(tmp_path, _config(), resume_changes=("model.latent_dim",))
    assert not any(tmp_path.iterdir())  # nothing written


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


# --- damage from outside -------------------------------------------------------------------------


@pytest.mark.slow
def test_torn_metrics_line_is_dropped_with_a_warning_and_rewritten(cut, whole_params, tmp_path):
    run = _copy(cut, tmp_path)
    with open(run / checkpoint.METRICS_FILE, "a") as f:
        f.write('{"epoch": 2, "step": 20, "train/lo')  # the write a full disk cut short
    with pytest.warns(UserWarning, match=r"metrics.jsonl line 2 is damaged and was dropped"):
        state, _ = loop.train_and_evaluate(_config(), run)
    assert [r["epoch"] for r in checkpoint.read_metrics(run)] == [1, 2]
    chex.assert_trees_all_equal(state.params, whole_params)


def test_corrupt_config_json_is_named_with_what_to_do(cut, tmp_path):
    run = _copy(cut, tmp_path)
    (run / checkpoint.CONFIG_FILE).write_text('{"data": {"name": "mnis')
    named = rf"{re.escape(str(run / 'config.json'))} is damaged .*delete .*new --workdir"
    with pytest.raises(ValueError, match=named):
        loop.train_and_evaluate(_config(), run)


def _overwrite_files(directory):
    for path in directory.rglob("*"):
        if path.is_file():
            path.write_bytes(b"\x00garbage" * 7)


@pytest.mark.slow
def test_unreadable_newest_checkpoint_gives_way_to_the_previous_one(cut, whole_params, tmp_path):
    run = _copy(cut, tmp_path)
    _overwrite_files(run / "checkpoints" / "15")
    with pytest.warns(UserWarning, match=r"checkpoint 15 .* cannot be read .* from checkpoint 10"):
        state, _ = loop.train_and_evaluate(_config(), run)
    assert (run / checkpoint.DAMAGED_DIR / "15").is_dir()
    chex.assert_trees_all_equal(state.params, whole_params)


def test_no_readable_checkpoint_is_refused_and_nothing_is_moved(cut, tmp_path):
    run = _copy(cut, tmp_path)
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
def test_full_disk_stops_with_one_error_and_the_run_resumes_after(cut, whole_params, small_disk):
    run = _copy(cut, small_disk)
    filler = small_disk / f"filler-{uuid.uuid4().hex}"
    with open(filler, "wb") as f:  # fill the disk but for 100 KiB: a checkpoint needs 600
        f.write(b"\0" * (shutil.disk_usage(small_disk).free - 100 * 1024))
    with pytest.raises(OSError, match=r"disk is full: checkpoint 20 .*checkpoint 15 is intact"):
        loop.train_and_evaluate(_config(), run)
    filler.unlink()
    state, _ = loop.train_and_evaluate(_config(), run)
    chex.assert_trees_all_equal(state.params, whole_params)


# --- the data a workdir trained on ---------------------------------------------------------------


@pytest.fixture(scope="module")
def digits():
    """400 training and 100 test images of mnist5k, with labels."""
    (x, y), (x_test, y_test) = (sources.load("mnist5k", split) for split in sources.SPLITS)
    return (x[:400], y[:400]), (x_test[:100], y_test[:100])


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
    prepared files came from other ones (another $AEJAX_DATA_DIR). The files are synthetic:
    two folders whose contents differ, each standing in for MNIST's four files."""
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


# --- workdirs written by earlier versions ----------------------------------------------------------

# The fields the composable structure added to every config (aejax/configs/fields.py, `base`).
ADDED = {
    "model": [
        "encoder", "bottleneck", "decoder", "decoder_widths", "prior_match", "mmd_kernel",
        "discriminator_widths", "num_codes", "code_dim", "codebook", "ema_decay",
        "lifetime_rate", "spatial_sparsity", "total_correlation", "dataset_size",
    ],
    "loss": ["commitment_weight", "mmd_weight", "adversarial_weight", "tc_weight"],
    "opt": ["parts"],
    "train": ["model_parallel"],
}  # fmt: skip


def _as_written_before(workdir, config, images):
    """Rewrites the run in `workdir` as aejax wrote it before: config.json without the added
    fields, no record of its data, its checkpoint a flax TrainState (no `collections`)."""
    (workdir / checkpoint.DATA_FILE).unlink()
    path = workdir / checkpoint.CONFIG_FILE
    saved = json.loads(path.read_text())
    for group, names in ADDED.items():
        for name in names:
            del saved[group][name]
    path.write_text(json.dumps(saved))
    state = create_state(config, images, parallel.make_mesh())  # as run
    with checkpoint.manager(workdir, keep=3, writer=True) as mngr:
        step = mngr.latest_step()
        new = checkpoint.restore_latest(mngr, state)
        shutil.rmtree(workdir / "checkpoints" / str(step))
        mngr.reload()
        old = train_state.TrainState(
            step=new.step, apply_fn=new.apply_fn, params=new.params, tx=new.tx, opt_state=new.opt_state
        )
        checkpoint.save(mngr, step, old)
        assert set(checkpoint.restore_plain(mngr, step)) == {"step", "params", "opt_state"}


def test_a_workdir_written_before_the_composable_structure_resumes_exactly(tiny, tmp_path):
    """Its config.json lacks the fields added since, it has no record of its data, and its
    checkpoint holds flax's TrainState, without `collections`: it resumes to the parameters
    of a run that never stopped, bit for bit."""
    (x, y), (x_test, y_test) = (sources.load("mnist5k", split) for split in sources.SPLITS)
    splits = {"train": (x[:400], y[:400]), "test": (x_test[:100], y_test[:100])}
    config = tiny("mlp", train__batch_size=50, train__chunk=8, train__save_every_steps=1000)
    whole, _ = loop.train_and_evaluate(config, tmp_path / "whole", **splits)
    loop.train_and_evaluate(config, tmp_path / "old", max_steps=8, **splits)
    _as_written_before(tmp_path / "old", config, x[:1])
    resumed, _ = loop.train_and_evaluate(config, tmp_path / "old", **splits)
    assert int(resumed.step) == 16
    for got, want in zip(jax.tree.leaves(resumed.params), jax.tree.leaves(whole.params), strict=True):
        assert np.asarray(got).tobytes() == np.asarray(want).tobytes()
    recorded = json.loads((tmp_path / "old" / checkpoint.CONFIG_FILE).read_text())
    assert recorded["model"]["prior_match"] == "none"  # now recorded, at its default
    # Its data was unknown: taken as it comes, and recorded from then on.
    data_record = (tmp_path / "old" / checkpoint.DATA_FILE).read_text()
    assert data_record == (tmp_path / "whole" / checkpoint.DATA_FILE).read_text()


def test_a_field_the_old_workdir_lacks_set_off_its_default_is_still_refused(tiny, tmp_path):
    config = tiny("mlp")
    checkpoint.claim_workdir(tmp_path, config)
    path = tmp_path / checkpoint.CONFIG_FILE
    saved = json.loads(path.read_text())
    del saved["model"]["prior_match"], saved["model"]["encoder"]
    path.write_text(json.dumps(saved))
    checkpoint.claim_workdir(tmp_path, config)  # both at their defaults: accepted, recorded
    assert "prior_match" in json.loads(path.read_text())["model"]
    path.write_text(json.dumps(saved))  # as made before, again
    config.model.prior_match = "mmd"
    with pytest.raises(ValueError, match=r"different config \(model.prior_match: <absent> -> mmd\)"):
        checkpoint.claim_workdir(tmp_path, config)


def test_a_vqvae_workdir_that_recorded_its_model_as_conv_resumes_as_unchanged(tmp_path):
    """vqvae's runs recorded model.name "conv" with bottleneck "vq"; it now names its own preset."""
    config = load_config("vqvae")
    assert config.model.name == "vqvae" and factory.structure(config.model)[1] == "vq"
    checkpoint.claim_workdir(tmp_path, config)
    path = tmp_path / checkpoint.CONFIG_FILE
    saved = json.loads(path.read_text())
    saved["model"].update(name="conv", bottleneck="vq")
    path.write_text(json.dumps(saved))
    assert checkpoint.claim_workdir(tmp_path, config) == {}
    assert json.loads(path.read_text())["model"]["name"] == "vqvae"
    saved["model"]["bottleneck"] = "gaussian"  # another model: still refused
    path.write_text(json.dumps(saved))
    with pytest.raises(ValueError, match=r"model.bottleneck: gaussian -> None, model.name: conv -> vqvae"):
        checkpoint.claim_workdir(tmp_path, config)
