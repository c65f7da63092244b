"""The 2-D VAE's latent space, with a Bernoulli (BCE) likelihood beside a gaussian one (MSE).

    python experiments/vae_2d.py [--dataset fashion_mnist] [--epochs N]

784-512-2 ReLU, batch 128 (the `vae2d` config), trained N = 50 epochs (as the Keras VAE
example, so `--full` changes nothing) twice: with BCE, whose loss is the negative ELBO in nats
per image, and with a gaussian likelihood of no set variance, whose loss is the squared error
summed over an image's pixels plus the KL (the Keras example's `mse * original_dim`). Leaves
`latent_scatter.png` (posterior means of the test images, coloured by label) and
`manifold.png` (the decoder over a 20x20 grid of gaussian quantiles), each with BCE on the
left and MSE on the right, and `metrics.json`, where the two test MSEs per pixel of the
decoded posterior means put both on one scale.
"""

import common

from aejax.data import sources
from aejax.evaluation import generation, representation

LIKELIHOODS = {"bernoulli": "bce", "gaussian": "mse"}  # likelihood (its run folder): metric prefix


def main(argv: list[str] | None = None) -> dict:
    args = common.parse_args(argv, __file__, __doc__, epochs=50, full_epochs=50)
    test_x, test_y = sources.load(args.dataset, "test")
    metrics, means, manifolds, titles = {}, [], [], []
    for likelihood, name in LIKELIHOODS.items():
        titles.append(f"{likelihood} likelihood ({name.upper()})")
        cfg = common.config("vae2d", args, loss={"likelihood": likelihood})
        run, last = common.run(cfg, args.workdir / likelihood)
        means.append((representation.encode(run.model, run.params, test_x), test_y, titles[-1]))
        manifolds.append(generation.manifold(run.model, run.params, 20, likelihood))
        metrics |= {
            f"{name}_train_loss": last["train/loss"],  # the mean over the last epoch's steps
            f"{name}_test_loss": last["test/loss"],
            f"{name}_test_recon": last["test/recon"],
            f"{name}_test_kl": last["test/kl"],
            f"{name}_test_mse_per_pixel": representation.reconstruction_mse(
                run.model, run.params, test_x, likelihood
            ),
        }
    representation.scatter_panels(means, args.workdir / "latent_scatter.png")
    generation.grid_panels(manifolds, titles, args.workdir / "manifold.png")
    keras = common.published(
        "bce_train_loss", 145, "MNIST (60,000)", 50, "the Keras VAE example (784-512-2, batch 128)"
    )
    common.save_metrics(args, metrics, [keras])
    return metrics


if __name__ == "__main__":
    main()
