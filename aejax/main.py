"""The command line: `aejax train --config CONFIG.py --workdir DIR [--config.a.b=value ...]`.

`aejax pretrain` trains the config's MLP autoencoder greedily, layer by layer, then end to end
(`aejax.pretrain`); `aejax represent` measures a trained run's codes (`aejax.representation`).

The only place that parses flags; the library takes a ConfigDict. With no --config it trains
the textbook VAE on the embedded mnist5k digits. It trains data-parallel on all local devices
(`--devices N` for fewer); a multi-host run starts the same command on every host with
`--coordinator_address HOST:PORT --num_processes P --process_id I` (or $JAX_COORDINATOR_ADDRESS,
$JAX_NUM_PROCESSES, $JAX_PROCESS_ID).
"""

from pathlib import Path

from absl import app, flags, logging
from ml_collections import config_flags

from aejax import data, models, parallel, pretrain, representation, train

DEFAULT_CONFIG = Path(__file__).resolve().parents[1] / "experiments" / "configs" / "vae.py"

_CONFIG = config_flags.DEFINE_config_file(
    "config", str(DEFAULT_CONFIG), "Config file with get_config(); override fields as --config.opt.lr=3e-4."
)
_WORKDIR = flags.DEFINE_string("workdir", "runs/vae", "Run directory: checkpoints, metrics, figures. Resumed if it has a checkpoint.")
_MAX_STEPS = flags.DEFINE_integer("max_steps", None, "Stop (with a checkpoint) after this many steps in all; rerun to continue.")
_DEVICES = flags.DEFINE_integer("devices", None, "Local devices per process to split each batch over (default: all).")
_COORDINATOR = flags.DEFINE_string("coordinator_address", None, "Multi-process runs: HOST:PORT of process 0.")
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", None, "Multi-process runs: how many processes in all.")
_PROCESS_ID = flags.DEFINE_integer("process_id", None, "Multi-process runs: this process's number, 0 to num_processes - 1.")


def main(argv: list[str]) -> None:
    if len(argv) != 2 or argv[1] not in ("train", "pretrain", "represent"):
        got = " ".join(argv[1:]) or "nothing"
        raise app.UsageError(f"expected the command 'train', 'pretrain' or 'represent', got {got}")
    logging.set_verbosity(logging.WARNING)  # Orbax logs every save at INFO; the epoch lines suffice
    parallel.initialize(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value)
    mesh = parallel.make_mesh(_DEVICES.value)
    if parallel.is_main_process():
        print(parallel.describe(mesh), flush=True)
    if argv[1] == "pretrain":
        pretrain.pretrain_and_finetune(_CONFIG.value, _WORKDIR.value, mesh)
        return
    state, _ = train.train_and_evaluate(
        _CONFIG.value, _WORKDIR.value, max_steps=_MAX_STEPS.value, mesh=mesh
    )
    if argv[1] == "represent" and parallel.is_main_process():  # the run is complete: measure it
        test = data.from_config(_CONFIG.value.data, "test")  # the model is built for its shape
        fitted = models.fit_to_data(_CONFIG.value.model, test.image_shape, test.num_classes)
        model = models.build(fitted)
        print(representation.evaluate_run(model, state.params, _CONFIG.value, _WORKDIR.value))


def run() -> None:
    app.run(main)


if __name__ == "__main__":
    run()
