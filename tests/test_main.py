"""The command line, run as a user runs it: in a subprocess."""

import os
import subprocess
import sys

MLP = "mlp"  # a shipped config, by name


def _aejax(*args, cwd):
    return subprocess.run(
        [sys.executable, "-m", "aejax.main", *args], cwd=cwd, capture_output=True, text=True, check=False,
        env={**os.environ, "JAX_PLATFORMS": "cpu"}, timeout=300,
    )


def test_train_command_leaves_a_complete_run_directory(tmp_path):
    out = _aejax("train", f"--config={MLP}", "--workdir=run", "--config.train.epochs=1",
                 "--config.model.encoder_widths=(8,)", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "epoch 1/1" in out.stdout and "samples/s" in out.stdout
    names = {p.name for p in (tmp_path / "run").iterdir()}
    assert {"config.json", "metrics.jsonl", "checkpoints", "loss_curves.png", "reconstructions.png"} <= names


def test_typo_in_an_override_is_an_error(tmp_path):
    out = _aejax("train", f"--config={MLP}", "--workdir=run", "--config.opt.lrr=3e-4", cwd=tmp_path)
    assert out.returncode != 0
    assert 'Did you mean "lr"' in out.stderr
    assert not (tmp_path / "run").exists()


def test_unknown_command_is_a_usage_error(tmp_path):
    out = _aejax("fit", cwd=tmp_path)
    message = "expected the command 'train', 'pretrain', 'represent' or 'fidelity', got fit"
    assert message in out.stderr


def test_workdir_naming_a_file_is_a_clear_error(tmp_path):
    (tmp_path / "run").write_text("notes")
    out = _aejax("train", f"--config={MLP}", "--workdir=run", cwd=tmp_path)
    assert out.returncode != 0
    assert "ValueError: workdir run cannot be created: " in out.stderr and "is a file" in out.stderr
    assert "FileExistsError" not in out.stderr
