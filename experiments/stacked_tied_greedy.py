"""The deep AE four ways: end to end, with tied weights, and each greedily pretrained.

    python experiments/stacked_tied_greedy.py [--dataset fashion_mnist] [--epochs N | --full]

784-300-150-300-784 ELU, BCE summed per image, L2 weight penalty 1e-3, batch 200: the
`stacked` config trained N epochs end to end; the `tied` config (decoder kernels are the
encoder's, transposed) for N epochs; and each of the two greedily pretrained one pair of
layers at a time (N/2 epochs each, the L2 penalty on the phase's own kernels), then
fine-tuned end to end for N epochs. N is 30, or 100 with `--full`. Leaves
`reconstructions.png` (10 test digits over each model's reconstructions), `test_loss.png`
(test BCE per epoch of the end-to-end runs; the greedy ones' fine-tuning) and `metrics.json`:
each model's test BCE in nats per image, its loss with the L2 penalty, and its number of
parameters.
"""

import common
import jax
import ml_collections
import numpy as np

from aejax import api
from aejax.data import sources
from aejax.evaluation import figures
from aejax.objectives import likelihoods
from aejax.training import checkpoint, pretrain


def main(argv: list[str] | None = None) -> dict:
    args = common.parse_args(argv, __file__, __doc__, epochs=30, full_epochs=100)
    runs = {}  # name: (config, the run that ends with the trained model)
    for name in ("stacked", "tied"):
        greedy = common.config(name, args)
        with greedy.unlocked():  # pretrained greedily: a group the config lacks
            greedy.pretrain = ml_collections.ConfigDict(
                {"layer_epochs": max(1, args.epochs // 2), "finetune": True}
            )
        runs[name] = (common.config(name, args), args.workdir / name)
        runs[f"{name}_greedy"] = (greedy, args.workdir / f"{name}_greedy" / "finetune")
    test_x = sources.load(args.dataset, "test")[0][:10]
    metrics, rows, recons = {}, {}, []
    for name, (cfg, workdir) in runs.items():
        if "pretrain" in cfg:  # its phases run in NAME_greedy/, the last being its fine-tuning
            pretrain.pretrain_and_finetune(cfg, workdir.parent)
            run = api.load_run(workdir)
        else:
            run, _ = common.run(cfg, workdir)
        rows[name] = checkpoint.read_metrics(workdir)
        last = rows[name][-1]
        logits, _ = run.model.apply({"params": run.params}, test_x)
        recons.append(np.asarray(likelihoods.mean_image(logits, cfg.loss.likelihood)))
        metrics |= {
            f"{name}_test_bce": last["test/recon"],
            f"{name}_test_loss": last["test/loss"],
            f"{name}_params": sum(leaf.size for leaf in jax.tree.leaves(run.params)),
        }
    figures.image_rows(
        [test_x, *recons], ["test images", *runs], args.workdir / "reconstructions.png"
    )
    figures.metric_curves(
        rows, ("test/recon",), args.workdir / "test_loss.png", "test BCE, nats per image"
    )
    common.save_metrics(args, metrics)
    return metrics


if __name__ == "__main__":
    main()
