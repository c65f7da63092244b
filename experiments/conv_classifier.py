"""A softmax head on the two-pool conv AE, pretrained as an autoencoder or not.

    python experiments/conv_classifier.py [--dataset fashion_mnist] [--epochs N | --full]

The `conv_twopool` AE (conv16-pool-conv8-pool to a 7x7x8 code and back, BCE, batch 200) trains
N epochs; then, as its tutorial builds the classifier, a dense softmax head on the flattened
28x28 output of the whole autoencoder is trained with the labels, encoder and decoder fine-tuned
with it, for N/2 epochs (the `conv_twopool_classifier` config), beside the same classifier from
scratch. N is 20, or 50 with `--full`. Leaves `code_scatter.png` (the test codes on their first
two principal axes, after pretraining beside after fine-tuning), `accuracy.png` (test accuracy
per epoch, pretrained against from scratch) and `metrics.json`.
"""

import common
import softmax_heads


def main(argv: list[str] | None = None) -> dict:
    args = common.parse_args(argv, __file__, __doc__, epochs=20, full_epochs=50)
    cfg = common.config("conv_twopool", args)
    common.run(cfg, args.workdir / "autoencoder")
    pretrained, head_epochs = args.workdir / "autoencoder", max(1, args.epochs // 2)
    metrics = softmax_heads.pretrained_against_scratch(
        cfg, pretrained, args.workdir, head_epochs, head_input="decoded"
    )
    seed = common.published(
        "test_accuracy", 0.99, "MNIST (60,000)", None, "the conv AE tutorial's softmax head"
    )
    common.save_metrics(args, metrics, [seed])
    return metrics


if __name__ == "__main__":
    main()
