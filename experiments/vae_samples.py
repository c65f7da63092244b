"""What the 20-d VAE generates: samples from its prior and paths between test digits.

    python experiments/vae_samples.py [--dataset fashion_mnist] [--epochs N]

784-500-500-20 ELU, Bernoulli likelihood, batch 150 (the `vae` config), N = 100 epochs (the
config's: its test loss is flat from about epoch 80 on mnist5k; `--full` changes nothing).
Its run leaves `samples.png` (decoder means of 60 draws from N(0, I), 6 rows of 10),
`interpolations.png` (8 rows: a test digit, 10 decodings along the line between its posterior
mean and that of another test digit, the other digit), `reconstructions.png`, `loss_curves.png`
and `metrics.json`: the test negative ELBO in nats per image, its reconstruction and KL parts
(single-sample estimates, as training evaluates them).
"""

import common


def main(argv: list[str] | None = None) -> dict:
    args = common.parse_args(argv, __file__, __doc__, epochs=100, full_epochs=100)
    _, last = common.run(common.config("vae", args), args.workdir)
    metrics = {
        "test_neg_elbo": last["test/loss"],
        "test_recon": last["test/recon"],
        "test_kl": last["test/kl"],
    }
    common.save_metrics(args, metrics)
    return metrics


if __name__ == "__main__":
    main()
