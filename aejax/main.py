"""The command line: `aejax train --config CONFIG.py --workdir DIR [--config.a.b=value ...]`.

`aejax pretrain` trains the config's MLP autoencoder greedily, layer by layer, then end to end
(`aejax.pretrain`); `aejax represent` measures a trained run's codes (`aejax.representation`).

The only place that parses flags; the library takes a ConfigDict. With no --config it trains
the textbook VAE on the embedded mnist5k digits.
"""

from pathlib import Path

from absl import app, flags, logging
from ml_collections import config_flags

from aejax import models, pretrain, representation, train

DEFAULT_CONFIG = Path(__file__).resolve().parents[1] / "experiments" / "configs" / "vae.py"

_CONFIG = config_flags.DEFINE_config_file(
    "config", str(DEFAULT_CONFIG), "Config file with get_config(); override fields as --config.opt.lr=3e-4."
)
_WORKDIR = flags.DEFINE_string("workdir", "runs/vae", "Run directory: checkpoints, metrics, figures. Resumed if it has a checkpoint.")
_MAX_STEPS = flags.DEFINE_integer("max_steps", None, "Stop (with a checkpoint) after this many steps in all; rerun to continue.")


def main(argv: list[str]) -> None:
    if len(argv) != 2 or argv[1] not in ("train", "pretrain", "represent"):
        got = " ".join(argv[1:]) or "nothing"
        raise app.UsageError(f"expected the command 'train', 'pretrain' or 'represent', got {got}")
    logging.set_verbosity(logging.WARNING)  # Orbax logs every save at INFO; the epoch lines suffice
    if argv[1] == "pretrain":
        pretrain.pretrain_and_finetune(_CONFIG.value, _WORKDIR.value)
        return
    state, _ = train.train_and_evaluate(_CONFIG.value, _WORKDIR.value, max_steps=_MAX_STEPS.value)
    if argv[1] == "represent":  # the run is complete (trained above if it was not): measure it
        model = models.build(_CONFIG.value.model)
        print(representation.evaluate_run(model, state.params, _CONFIG.value, _WORKDIR.value))


def run() -> None:
    app.run(main)


if __name__ == "__main__":
    run()
