"""A workdir of an older aejax resumes: its config.json lacks the encoder, bottleneck and
decoder fields and those declared with them, it has no record of its data, and its checkpoints
hold flax's TrainState, without `collections`. So does one whose config named its model by
another preset."""

import json
import shutil

import jax
import numpy as np
import pytest
from conftest import load_config
from flax.training import train_state

from aejax import models
from aejax.data import sources
from aejax.evaluation import figures
from aejax.training import checkpoint, loop, parallel
from aejax.training.state import create_state

# The fields an older config.json lacks, each in every config (aejax/configs/fields.py, `base`).
ADDED = {
    "model": [
        "encoder", "bottleneck", "decoder", "decoder_widths", "prior_match", "mmd_kernel",
        "discriminator_widths", "num_codes", "code_dim", "codebook", "ema_decay",
        "lifetime_rate", "spatial_sparsity", "total_correlation", "dataset_size",
    ],
    "loss": ["commitment_weight", "mmd_weight", "adversarial_weight", "tc_weight"],
    "opt": ["parts"],
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
    state = parallel.replicate(create_state(config, images), parallel.make_mesh())  # as run
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


def test_a_workdir_written_before_the_composable_structure_resumes_exactly(
    tiny, tmp_path, monkeypatch
):
    monkeypatch.setattr(figures, "write_figures", lambda *args, **kwargs: None)
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
    assert config.model.name == "vqvae" and models.structure(config.model)[1] == "vq"
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
