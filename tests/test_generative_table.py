"""experiments/generative_table.py at smoke size on mnist5k: a binarised VAE scored and
tabulated beside the real-images row, with its NLL; a WAE and a VQ-VAE's learned prior scored
without one; a deterministic AE and the WAE scored with each sampler fitted to their codes and
by their reconstructions."""

import json
import sys

import pytest
from conftest import EXPERIMENTS

sys.path.insert(0, str(EXPERIMENTS))
import generative_table


@pytest.mark.slow
def test_the_table_scores_each_config_beside_real_images(tmp_path, monkeypatch):
    out = tmp_path / "table.md"
    args = ["--datasets", "mnist5k", "--only", "iwae", "--epochs", "1", "--feature_epochs", "1",
            "--samples", "300", "--nll_samples", "10", "--nll_images", "50",
            "--workdir", str(tmp_path / "runs"), "--out", str(out)]  # fmt: skip
    lines = generative_table.main(args)
    assert out.read_text() == "\n".join(lines)
    assert f"`python experiments/generative_table.py {' '.join(args)}`" in lines[2]
    scored = json.loads((tmp_path / "runs/mnist5k/iwae/fidelity.json").read_text())
    real = next(line for line in lines if line.startswith("| training images (real) |"))
    row = next(line for line in lines if line.startswith("| iwae |"))
    assert row.startswith(f"| iwae | 1 | {scored['fid']:.2f} | {scored['precision']:.3f} | ")
    assert f"{scored['nll']:.2f} (k=10, 50 images)" in row
    assert (
        float(real.split("|")[3]) < scored["fid"]
    )  # real images are closer than 1 epoch's samples

    # A rerun by the same protocol reads the scores back; another sample count scores again.
    def score_again(*args, **kwargs):
        raise AssertionError("scored again")

    monkeypatch.setattr(generative_table.fidelity, "evaluate_run", score_again)
    assert generative_table.main(args) == lines
    with pytest.raises(AssertionError, match="scored again"):
        generative_table.main([*args[:-4], "--samples", "200", *args[-4:]])


@pytest.mark.slow
def test_a_prior_over_codes_trains_its_autoencoder_first_and_only_vaes_get_an_nll(tmp_path):
    args = ["--datasets", "mnist5k", "--only", "wae_mmd", "vqvae_prior", "--epochs", "1",
            "--feature_epochs", "1", "--samples", "200", "--workdir", str(tmp_path / "runs"),
            "--out", str(tmp_path / "table.md")]  # fmt: skip
    lines = generative_table.main(args)
    runs = tmp_path / "runs/mnist5k"
    prior = json.loads((runs / "vqvae_prior/config.json").read_text())
    assert prior["train"]["init_from"] == str(runs / "vqvae")
    assert (runs / "vqvae/checkpoints").is_dir()
    for name in ("wae_mmd", "vqvae_prior"):
        row = next(line for line in lines if line.startswith(f"| {name} |"))
        assert row.split("|")[6].strip() == "—"
        assert "nll" not in json.loads((runs / name / "fidelity.json").read_text())


@pytest.mark.slow
def test_fitted_samplers_give_a_deterministic_ae_rows_and_a_wae_more(tmp_path):
    """With the three samplers and the reconstructions: the WAE's prior row, then each config's
    rows of its mixture, its two-stage VAE, its transformer and its reconstructions, the last
    from the run's decoded training codes."""
    args = ["--datasets", "mnist5k", "--only", "mlp", "wae_mmd", "--samplers", "mixture",
            "two_stage", "transformer", "--components", "3", "--sampler_epochs", "1", "--reconstructions",
            "--epochs", "1", "--feature_epochs", "1", "--samples", "200",
            "--workdir", str(tmp_path / "runs"), "--out", str(tmp_path / "table.md")]  # fmt: skip
    lines = generative_table.main(args)
    models = [line.split("|")[1].strip() for line in lines if line.startswith("| ") and "---" not in line]
    assert models == [
        "model", "training images (real)", "wae_mmd", "mlp + mixture", "mlp + two-stage VAE",
        "mlp + transformer", "mlp reconstructions", "wae_mmd + mixture", "wae_mmd + two-stage VAE",
        "wae_mmd + transformer", "wae_mmd reconstructions",
    ]  # fmt: skip
    runs = tmp_path / "runs/mnist5k"
    assert not (runs / "mlp/fidelity.json").exists()
    scored = {kind: json.loads((runs / f"wae_mmd/fidelity_{kind}.json").read_text())
              for kind in ("mixture", "two_stage", "transformer", "reconstructions")}  # fmt: skip
    assert scored["mixture"]["components"] == 3 and scored["two_stage"]["sampler_epochs"] == 1
    assert scored["transformer"]["sampler_epochs"] == 1
    prior = json.loads((runs / "wae_mmd/fidelity.json").read_text())
    assert len({prior["fid"], *(s["fid"] for s in scored.values())}) == 5
    assert scored["reconstructions"]["fid"] < prior["fid"]  # decoded codes beat 1 epoch's samples


def test_the_generative_configs_are_the_shipped_models_that_sample():
    assert generative_table.generative_configs() == [
        "aae", "betatcvae", "ciwae", "conv_vae", "factorvae", "hvae", "infovae", "iwae", "iwae_k5",
        "iwae_k50", "miwae", "piwae", "vae", "vae2d", "vae_iaf", "vae_planar", "vamp", "vqvae_prior",
        "wae_mmd", "wae_mmd_rbf",
    ]  # fmt: skip
    continuous = generative_table.mixture_configs()
    assert {"mlp", "conv", "wae_mmd", "vae"} <= set(continuous)
    assert not {"vqvae", "vqvae_prior", "conv_classifier"} & set(continuous)
