"""experiments/generative_table.py at smoke size: one binarised VAE on mnist5k, scored and
tabulated beside the real-images row, with its NLL."""

import json
import sys

from conftest import EXPERIMENTS

sys.path.insert(0, str(EXPERIMENTS))
import generative_table


def test_the_table_scores_each_config_beside_real_images(tmp_path):
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
    assert float(real.split("|")[3]) < scored["fid"]  # real images are closer than 1 epoch's samples


def test_the_generative_configs_are_the_shipped_vaes():
    assert generative_table.generative_configs() == [
        "betatcvae", "conv_vae", "iwae", "iwae_k5", "iwae_k50", "vae", "vae2d"
    ]
