"""The stacked denoising AE's 2-D code before and after a softmax head is trained on it.

    python experiments/sdae_2d.py [--dataset fashion_mnist] [--epochs N | --full]

784-128-64-10-2 ReLU, linear 2-D code, zero-masking noise (keep 0.8), BCE, batch 100 (the
`sdae` config): greedily pretrained one pair of layers at a time (N/2 epochs each), fine-tuned
end to end as a denoising AE (N epochs), then a softmax head on its code trained with the
labels, the encoder fine-tuned with it (N epochs), beside the same classifier from scratch.
N is 20, or 50 with `--full`. Leaves `code_scatter.png` (the test codes after unsupervised
pretraining beside those after supervised fine-tuning), `accuracy.png` (test accuracy per
epoch, pretrained against from scratch) and `metrics.json` (with the denoising AE's BCE per
pixel, end to end and of its first layer's 784-128-784 phase: in training, masked input against
clean target; in test, clean against clean).
"""

import common
import softmax_heads

from aejax.training import checkpoint, pretrain


def main(argv: list[str] | None = None) -> dict:
    args = common.parse_args(argv, __file__, __doc__, epochs=20, full_epochs=50)
    cfg = common.config("sdae", args, pretrain={"layer_epochs": max(1, args.epochs // 2)})
    pretrain.pretrain_and_finetune(cfg, args.workdir / "autoencoder")
    pretrained = args.workdir / "autoencoder" / "finetune"  # the end-to-end denoising run
    metrics = softmax_heads.pretrained_against_scratch(cfg, pretrained, args.workdir, args.epochs)
    denoising = checkpoint.read_metrics(pretrained)[-1]  # BCE per pixel; train inputs masked
    first = checkpoint.read_metrics(args.workdir / "autoencoder" / "layer0")[-1]  # 784-128-784
    metrics |= {
        "dae_train_bce": denoising["train/recon"],
        "dae_test_bce": denoising["test/recon"],
        "first_layer_dae_train_bce": first["train/recon"],
    }
    source = "the stacked denoising AE tutorial"
    seeds = [
        common.published("dae_train_bce", 0.09, "MNIST (60,000)", None, source),
        common.published(
            "test_accuracy", 0.95, "MNIST (60,000)", None, f"{source}'s 2-D softmax head"
        ),
    ]
    common.save_metrics(args, metrics, seeds)
    return metrics


if __name__ == "__main__":
    main()
