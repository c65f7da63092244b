"""Greedy layer-wise pretraining of a stacked (MLP or conv) autoencoder, then end-to-end
fine-tuning.

Each phase is an ordinary run of `loop.train_and_evaluate` in its own workdir
(`WORKDIR/layer0`, `layer1`, ..., then `WORKDIR/finetune`), started from the previous phase's
parameters (`train.init_from`) with every layer but the phase's pair frozen (`opt.trainable`).
So each phase is checkpointed and resumed like any run, and a finished phase is not retrained.
"""

import copy
from pathlib import Path

import ml_collections

from aejax.objectives import layerwise
from aejax.training import loop


def phase_config(config: ml_collections.ConfigDict, layer: int, init_from: str):
    """`config` as phase `layer`: that layer's objective, its pair trainable, its epochs."""
    phase = copy.deepcopy(config)
    phase.loss.objective = "layerwise"
    phase.loss.layer = layer
    phase.opt.trainable = layerwise.trainable_pair(config.model, layer)
    phase.train.epochs = config.pretrain.layer_epochs
    phase.train.init_from = init_from
    return phase


def finetune_config(config: ml_collections.ConfigDict, init_from: str):
    """`config` itself, every parameter trainable, started from the pretrained parameters."""
    finetune = copy.deepcopy(config)
    finetune.train.init_from = init_from
    return finetune


def pretrain_and_finetune(
    config: ml_collections.ConfigDict,
    workdir: str | Path,
    mesh=None,
    *,
    train_split=None,
    test_split=None,
):
    """Runs every phase in `workdir`; returns the last run's state and last epoch's metrics.

    Without `pretrain.finetune` the last run is the innermost phase. `mesh`, and the data
    `train_split` and `test_split` (default: `config.data`'s), as `train` and `test` of
    `loop.train_and_evaluate`.
    """
    if "pretrain" not in config:
        raise ValueError(
            "greedy pretraining needs a `pretrain` config group (layer_epochs, finetune); see "
            "the shipped configs sdae and conv_greedy (aejax/configs/)"
        )
    workdir = Path(workdir).absolute()
    data = {"train": train_split, "test": test_split}
    depth, previous = layerwise.depth(config.model), ""
    for layer in range(depth):
        print(f"greedy pretraining, phase {layer + 1} of {depth}", flush=True)
        result = loop.train_and_evaluate(
            phase_config(config, layer, previous), workdir / f"layer{layer}", mesh=mesh, **data
        )
        previous = str(workdir / f"layer{layer}")
    if not config.pretrain.finetune:
        return result
    print("end-to-end fine-tuning", flush=True)
    finetune = finetune_config(config, previous)
    return loop.train_and_evaluate(finetune, workdir / "finetune", mesh=mesh, **data)
