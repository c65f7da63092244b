"""Does the VAE converge faster with a log-variance head than with one that outputs sigma?

    python experiments/vae_posterior_scale.py [--dataset mnist] [--epochs N | --full]

The textbook VAE (the `vae` config: 784-500-500-20 ELU, Bernoulli likelihood, Adam 1e-3,
batch 150) trained N epochs twice from the same seed, once with a head that outputs the
posterior's log-variance (`model.posterior_scale="logvar"`, in `logvar/`) and once with one
that outputs sigma itself, whose KL reads log(sigma^2 + 1e-10) (`"sigma"`, in `sigma/`). N is
30, or 100 with `--full`; full MNIST with `AEJAX_IDX_DIR=DIR ... --dataset mnist`. Leaves
`loss_curves.png` (test and train negative ELBO per epoch, both heads on one axes),
`kl_curves.png` (the KL term alone) and `metrics.json`: each head's train loss
after the first epoch and test loss, recon and KL after the last.
"""

import common

from aejax.evaluation import figures
from aejax.training import checkpoint

HEADS = ("logvar", "sigma")


def main(argv: list[str] | None = None) -> dict:
    args = common.parse_args(argv, __file__, __doc__, epochs=30, full_epochs=100)
    rows, metrics = {}, {}
    for head in HEADS:
        cfg = common.config("vae", args, model={"posterior_scale": head})
        _, last = common.run(cfg, args.workdir / head)
        rows[head] = checkpoint.read_metrics(args.workdir / head)
        metrics |= {
            f"{head}_train_loss_epoch1": rows[head][0]["train/loss"],
            f"{head}_test_loss": last["test/loss"],
            f"{head}_test_recon": last["test/recon"],
            f"{head}_test_kl": last["test/kl"],
        }
    labels = {f"{head} head": rows[head] for head in HEADS}
    figures.metric_curves(
        labels, ("test/loss", "train/loss"), args.workdir / "loss_curves.png",
        "negative ELBO, nats per image",
    )
    figures.metric_curves(
        labels, ("test/kl", "train/kl"), args.workdir / "kl_curves.png", "KL, nats per image"
    )
    common.save_metrics(args, metrics)
    return metrics


if __name__ == "__main__":
    main()
