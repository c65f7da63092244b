"""The command line, run as a user runs it: in a subprocess."""

import json
import os
import subprocess
import sys

import pytest

MLP = "mlp"  # a shipped config, by name


def _aejax(*args, cwd):
    return subprocess.run(
        [sys.executable, "-m", "aejax.cli", *args], cwd=cwd, capture_output=True, text=True, check=False,
        env={**os.environ, "JAX_PLATFORMS": "cpu"}, timeout=300,
    )


@pytest.mark.slow
def test_train_command_leaves_a_complete_run_directory_that_sampler_fits_a_mixture_to(tmp_path):
    out = _aejax("train", f"--config={MLP}", "--workdir=run", "--config.train.epochs=1",
                 "--config.model.encoder_widths=(8,)", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "epoch 1/1" in out.stdout and "samples/s" in out.stdout
    names = {p.name for p in (tmp_path / "run").iterdir()}
    assert {"config.json", "metrics.jsonl", "checkpoints", "loss_curves.png", "reconstructions.png"} <= names
    sampler = _aejax("sampler", f"--config={MLP}", "--workdir=run", "--config.train.epochs=1",
                     "--config.model.encoder_widths=(8,)", "--components=4", cwd=tmp_path)  # fmt: skip
    assert sampler.returncode == 0, sampler.stderr
    fitted = json.loads(sampler.stdout.splitlines()[-1])  # fitted to mnist5k's training split
    assert (fitted["codes"], fitted["code_units"], fitted["components"]) == (4000, 8, 4)
    assert {"code_mixture.npz", "mixture_samples.png"} <= {p.name for p in (tmp_path / "run").iterdir()}


@pytest.mark.slow
def test_typo_in_an_override_is_one_line_naming_the_field_and_the_fix(tmp_path):
    out = _aejax("train", "--config", MLP, "--workdir=run", "--config.opt.lrr=3e-4", cwd=tmp_path)
    assert out.returncode == 2
    assert out.stderr == (
        "aejax: error: the config has no field opt.lrr (--config.opt.lrr=3e-4); did you mean "
        "opt.lr? `aejax show CONFIG` lists a config's fields\n"
    )
    assert not (tmp_path / "run").exists()
    verbose = _aejax("train", "--config", MLP, "--config.opt.lrr=3e-4", "--verbose", cwd=tmp_path)
    assert "Traceback" in verbose.stderr


@pytest.mark.slow
def test_an_error_in_the_run_is_one_line_and_its_traceback_is_behind_verbose(tmp_path):
    out = _aejax("train", f"--config={MLP}", "--workdir=run", "--config.data.path=none.npz", cwd=tmp_path)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert out.stderr.splitlines()[-1].startswith("aejax: error: FileNotFoundError: data.path none.npz")
    assert len(out.stderr.strip().splitlines()) == 1 + out.stderr.count("devices")  # the mesh line
    verbose = _aejax("train", f"--config={MLP}", "--workdir=run", "--config.data.path=none.npz",
                     "--verbose", cwd=tmp_path)  # fmt: skip
    assert "Traceback" in verbose.stderr


def test_unknown_command_is_a_usage_error(tmp_path):
    out = _aejax("fit", cwd=tmp_path)
    assert out.returncode == 2
    assert "expected a command (train, pretrain, represent, fidelity, sampler, show; show takes a config), got fit" in out.stderr


@pytest.mark.slow
def test_help_lists_the_commands_the_configs_and_the_flags(tmp_path):
    for args in (["--help"], ["train", "--help"]):
        out = _aejax(*args, cwd=tmp_path)
        assert out.returncode == 0, out.stderr
        assert "  show       print a config's fields" in out.stdout
        assert "  vqvae                    VQ-VAE (van den Oord et al., 2017)\n" in out.stdout
        assert "--resume_changes:" in out.stdout and "--[no]verbose:" in out.stdout


def test_show_prints_a_configs_fields_with_their_values_and_comments(tmp_path):
    out = _aejax("show", "vqvae", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith("VQ-VAE (van den Oord et al., 2017)")
    assert "model.num_codes = 64  # vq, rvq (each level): codebook entries" in lines  # base()'s comment
    assert "model.code_dim = 16  # one codebook vector per position of the 7x7 map" in lines  # its own
    assert "loss.reduction = 'sum'  # nats per image: the codebook terms stay a small part" in lines
    assert "train.epochs = 20" in lines  # declared without a comment


def test_workdir_naming_a_file_is_a_clear_error(tmp_path):
    (tmp_path / "run").write_text("notes")
    out = _aejax("train", f"--config={MLP}", "--workdir=run", cwd=tmp_path)
    assert out.returncode != 0
    assert "ValueError: workdir run cannot be created: " in out.stderr and "is a file" in out.stderr
    assert "FileExistsError" not in out.stderr


@pytest.mark.slow
def test_parts_chosen_on_the_command_line_bring_what_they_need(tmp_path):
    """--config.model.bottleneck=vq sets the VQ bottleneck's defaults (bottlenecks.DEFAULTS),
    and a conv decoder in an mlp config single steps (conv.DEFAULTS), in the run's config.json,
    except a field the command line sets too; the sizes mlp leaves unset are derived."""
    out = _aejax("train", "--config=mlp", "--workdir=run", "--max_steps=1", "--config.model.bottleneck=vq",
                 "--config.model.decoder=nearest", "--config.model.code_activation=tanh", cwd=tmp_path)  # fmt: skip
    assert out.returncode == 0, out.stderr
    recorded = json.loads((tmp_path / "run" / "config.json").read_text())
    assert (recorded["loss"]["reduction"], recorded["model"]["code_activation"]) == ("sum", "tanh")
    assert recorded["train"]["chunk"] == 1 and recorded["model"]["decoder_features"] == [64, 32]
