"""What sdae_2d and conv_classifier share (a helper, not a script): a softmax head on a
pretrained autoencoder's encoder against the same classifier trained from scratch.

Both classifiers are ordinary runs in `finetuned/` and `scratch/` of the script's run directory;
the comparison's figures go into the run directory itself.
"""

from pathlib import Path

import common
import ml_collections

from aejax import api
from aejax.configs import fields
from aejax.data import sources
from aejax.evaluation import figures, representation
from aejax.training import checkpoint

RUNS = {"pretrained, fine-tuned": "finetuned", "from scratch": "scratch"}  # label: folder


def pretrained_against_scratch(
    cfg: ml_collections.ConfigDict, pretrained: Path, workdir: Path, epochs: int, **head_options
) -> dict:
    """Trains both classifiers on `cfg`'s encoder for `epochs`, one started from the trained
    autoencoder's run `pretrained`; writes `code_scatter.png` (the test codes after pretraining
    beside those after fine-tuning) and `accuracy.png` (test accuracy per epoch of both).
    `head_options` go to `fields.classifier_config` (`head_input="decoded"`). Returns both test
    accuracies and a linear probe's on the pretrained code."""
    head = fields.classifier_config(cfg, init_from=pretrained, epochs=epochs, **head_options)
    finetuned, _ = common.run(head, workdir / RUNS["pretrained, fine-tuned"])
    scratch = fields.classifier_config(cfg, epochs=epochs, **head_options)
    common.run(scratch, workdir / RUNS["from scratch"])
    rows = {label: checkpoint.read_metrics(workdir / run) for label, run in RUNS.items()}

    (train_x, train_y), (test_x, test_y) = (sources.load(cfg.data.name, s) for s in ("train", "test"))
    autoencoder = api.load_run(pretrained)
    codes = [
        representation.encode(autoencoder.model, autoencoder.params, x) for x in (train_x, test_x)
    ]
    tuned = representation.encode(finetuned.model, finetuned.params, test_x)
    representation.scatter_panels(
        [
            (codes[1], test_y, "after unsupervised pretraining"),
            (tuned, test_y, "after supervised fine-tuning"),
        ],
        workdir / "code_scatter.png",
    )
    figures.metric_curves(rows, ("test/accuracy",), workdir / "accuracy.png", "test accuracy")
    return {
        "test_accuracy": rows["pretrained, fine-tuned"][-1]["test/accuracy"],
        "scratch_test_accuracy": rows["from scratch"][-1]["test/accuracy"],
        "pretrained_linear_probe": representation.linear_probe(codes[0], train_y, codes[1], test_y),
    }
