"""The sparse AE: how active each code unit is on average, against the target rate.

    python experiments/sparse_codes.py [--dataset fashion_mnist] [--epochs N | --full]

The `sparse` config (784-1000-784, sigmoid code, BCE, plus 0.2 times the KL from a target
mean activation of 0.1 to each unit's batch-mean activation), in `sparse/`, and the same
model with the penalty's weight 0, in `unpenalised/`, for contrast: the penalty, not the
model, is what pulls the mean activations to the target. 30 epochs by default (the config's;
a couple of minutes for both on mnist5k); `--full` trains 100 (the tutorial gives no length).
Leaves `mean_activations.png` (histograms of each unit's mean activation over the test set,
the target marked), `reconstructions.png` (10 test digits, both models' reconstructions)
and `metrics.json` in the run directory.
"""

from pathlib import Path

import common
import matplotlib.pyplot as plt
import numpy as np

from aejax.data import sources
from aejax.evaluation import figures, inference, representation

PENALTY_WEIGHTS = {"sparse": 0.2, "unpenalised": 0.0}  # run: weight of the KL sparsity penalty


def histograms(mean_activations: dict[str, np.ndarray], target: float, path: Path) -> None:
    """Each run's code units by their mean activation, one histogram a run, the target marked."""
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for name, mean_activation_K in mean_activations.items():
        weight = PENALTY_WEIGHTS[name]
        ax.hist(
            mean_activation_K, bins=np.linspace(0, 1, 101), alpha=0.6, label=f"KL weight {weight}"
        )
    ax.axvline(target, color="black", linestyle="--", label=f"target {target}")
    ax.set(xlabel="mean activation of a code unit over the test set", ylabel="code units")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict:
    args = common.parse_args(argv, __file__, __doc__, epochs=30, full_epochs=100)
    test_x = sources.load(args.dataset, "test")[0]
    rows, mean_activations, metrics = [test_x[:10]], {}, {}
    for name, weight in PENALTY_WEIGHTS.items():
        cfg = common.config("sparse", args)
        cfg.loss.regularizers.kl_sparsity.weight = weight
        run, last = common.run(cfg, args.workdir / name)
        codes_NxK = representation.encode(run.model, run.params, test_x)
        mean_activations[name] = np.asarray(codes_NxK.mean(0))
        recon = inference.reconstruct(run.model, run.params, test_x[:10], cfg.loss.likelihood)
        rows.append(np.asarray(recon))
        metrics[f"{name}_mean_activation"] = float(mean_activations[name].mean())
        metrics[f"{name}_test_bce"] = last["test/recon"]
    target = cfg.loss.regularizers.kl_sparsity.target
    histograms(mean_activations, target, args.workdir / "mean_activations.png")
    titles = ["test images", *(f"reconstructions, KL weight {w}" for w in PENALTY_WEIGHTS.values())]
    figures.image_rows(rows, titles, args.workdir / "reconstructions.png")
    common.save_metrics(args, metrics)
    return metrics


if __name__ == "__main__":
    main()
