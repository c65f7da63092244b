"""A softmax head on the conv AE's encoder, pretrained as an autoencoder or not.

    python experiments/conv_classifier.py [--dataset fashion_mnist] [--epochs N | --full]

The conv AE (the `conv` config: conv16-pool-conv8-pool-conv8-pool to a 4x4x8 code, BCE,
batch 200) trains N epochs; then a dense softmax head on its code is trained with the labels,
the encoder fine-tuned with it, for N/2 epochs (as the `conv_classifier` config), beside the
same classifier from scratch. N is 20, or 50 with `--full`. Leaves `code_scatter.png` (the
test codes on their first two principal axes, after pretraining beside after fine-tuning),
`accuracy.png` (test accuracy per epoch, pretrained against from scratch) and `metrics.json`.
"""

import common
import softmax_heads


def main(argv: list[str] | None = None) -> dict:
    args = common.parse_args(argv, __file__, __doc__, epochs=20, full_epochs=50)
    cfg = common.config("conv", args)
    common.run(cfg, args.workdir / "autoencoder")
    pretrained, head_epochs = args.workdir / "autoencoder", max(1, args.epochs // 2)
    metrics = softmax_heads.pretrained_against_scratch(cfg, pretrained, args.workdir, head_epochs)
    seed = common.published(
        "test_accuracy", 0.99, "MNIST (60,000)", None, "the conv AE tutorial's softmax head"
    )
    common.save_metrics(args, metrics, [seed])
    return metrics


if __name__ == "__main__":
    main()
