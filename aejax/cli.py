"""The command line: `aejax train --config NAME_OR_FILE --workdir DIR [--config.a.b=value ...]`.

`aejax --help` lists the commands, the shipped configs and the flags; `aejax show NAME` prints a
config's fields with their values and comments. An error is one line naming the problem and
the fix; `--verbose` shows its traceback.

`--config` takes a shipped config's name (`vae`, `mlp`, ...: `aejax.configs.names()`) or the path
of a file with `get_config()`.

`aejax pretrain` trains the config's stacked (MLP or conv) autoencoder greedily, layer by
layer, then end to end (`aejax.training.pretrain`); `aejax represent` measures a trained run's codes (`aejax.evaluation.representation`);
`aejax fidelity` scores a trained VAE's samples against the test set: FID, precision, recall
(`aejax.evaluation.fidelity`).

The only place that parses flags; the library takes a ConfigDict. With no --config it trains
the textbook VAE on the embedded mnist5k digits. It trains data-parallel on all local devices
(`--devices N` for fewer; `--config.train.model_parallel=M` splits a sparse autoencoder's
latents over groups of M of them); a multi-host run starts the same command on every host with
`--coordinator_address HOST:PORT --num_processes P --process_id I` (or $JAX_COORDINATOR_ADDRESS,
$JAX_NUM_PROCESSES, $JAX_PROCESS_ID).
"""

import json
import sys
from pathlib import Path

from absl import app, flags, logging
from ml_collections import config_flags

from aejax import api, configs
from aejax.evaluation import code_mixture, code_vae, fidelity, representation
from aejax.training import loop, parallel, pretrain

DEFAULT_CONFIG = "vae"
COMMANDS = {
    "train": "train --config in --workdir; rerun to resume it from its last checkpoint",
    "pretrain": "train a stacked autoencoder greedily, layer by layer, then end to end",
    "represent": "train (or finish) the run, then measure its codes: linear probe, kNN, PCA",
    "fidelity": "train (or finish) the run, then score its samples: FID, precision, recall",
    "sampler": "train (or finish) the run, then fit a sampler to its training codes (--kind: a "
    "Gaussian mixture, a second VAE or a transformer over the binned codes), which its samples "
    "(and `aejax fidelity`) then draw from",
    "show": "print a config's fields, values and comments: aejax show NAME_OR_FILE",
}


class _NameOrFileParser(flags.ArgumentParser):
    """A shipped config's name, else what config_flags' own parser makes of a file path."""

    def __init__(self, file_parser: flags.ArgumentParser):
        self.file_parser = file_parser

    def parse(self, argument: str):
        if argument in configs.names():
            return configs.load(argument)  # imported from the package: works from a wheel
        if not Path(argument.split(":", 1)[0]).is_file():  # a `file.py:arg` passes arg on
            raise ValueError(
                f"{argument!r} is neither a shipped config ({', '.join(configs.names())}) nor a "
                "config file"
            )
        return self.file_parser.parse(argument)

    def flag_type(self) -> str:
        return self.file_parser.flag_type()


def define_config_flag(
    flag_values: flags.FlagValues = flags.FLAGS, sys_argv: list[str] | None = None
) -> flags.FlagHolder:
    """`--config NAME_OR_FILE` with its `--config.a.b=value` overrides, locked.

    config_flags' own flag reads only files, so its parser is swapped for one that also takes
    names before the default, a name, is parsed (`set_default` parses it, and applies the
    overrides when no --config is given).
    """
    holder = config_flags.DEFINE_config_file(
        "config",
        None,
        "A shipped config's name or a file with get_config(); override as --config.opt.lr=3e-4.",
        flag_values=flag_values,
        sys_argv=sys_argv,
    )
    flag_values["config"].parser = _NameOrFileParser(flag_values["config"].parser)
    flag_values.set_default("config", DEFAULT_CONFIG)
    return holder


_CONFIG = define_config_flag()
_WORKDIR = flags.DEFINE_string("workdir", "runs/vae", "Run directory: checkpoints, metrics, figures. Resumed if it has a checkpoint.")
_MAX_STEPS = flags.DEFINE_integer("max_steps", None, "Stop (with a checkpoint) after this many steps in all; rerun to continue.")
_RESUME_CHANGES = flags.DEFINE_list(
    "resume_changes", [], "Config fields a resumed run may change, e.g. opt.lr after a divergence "
    "(checkpoint.RESUMABLE_FIELDS), or data to continue it on other data; other changes to a "
    "workdir's config or data are refused."
)
_DEVICES = flags.DEFINE_integer("devices", None, "Local devices per process to train on (default: all); each batch is split over them, or over groups of --config.train.model_parallel.")
_COORDINATOR = flags.DEFINE_string("coordinator_address", None, "Multi-process runs: HOST:PORT of process 0.")
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", None, "Multi-process runs: how many processes in all.")
_PROCESS_ID = flags.DEFINE_integer("process_id", None, "Multi-process runs: this process's number, 0 to num_processes - 1.")
_FEATURES_WORKDIR = flags.DEFINE_string(
    "features_workdir", None, "aejax fidelity: the feature network's run directory, trained there "
    "on first use (default: runs/fidelity_features/DATASET)."
)
_SAMPLES = flags.DEFINE_integer("samples", fidelity.SAMPLES, "aejax fidelity: generated images to score.")
_COMPONENTS = flags.DEFINE_integer("components", code_mixture.COMPONENTS, "aejax sampler: the mixture's gaussians.")
_KIND = flags.DEFINE_enum("kind", "mixture", api.FITTED_SAMPLERS, "aejax sampler: a Gaussian mixture, a two-stage VAE, or a transformer over binned codes.")
_SAMPLER_EPOCHS = flags.DEFINE_integer("sampler_epochs", code_vae.EPOCHS, "aejax sampler: the two-stage VAE's or the transformer's epochs.")
_VERBOSE = flags.DEFINE_boolean("verbose", False, "Show an error's traceback, not only its message.")


def usage() -> str:
    """`aejax --help`: the commands, the shipped configs and this module's flags."""
    lines = [
        "usage: aejax COMMAND [--config NAME_OR_FILE] [--workdir DIR] [--config.GROUP.FIELD=VALUE]",
        "",
        "commands:",
        *(f"  {name:<10} {text}" for name, text in COMMANDS.items()),
        "",
        f"configs (default {DEFAULT_CONFIG}; `aejax show NAME` lists a config's fields):",
        *(f"  {name:<24} {configs.summary(name)[:80]}" for name in configs.names()),
        "",
        "flags:",
        *flags.FLAGS.module_help(sys.modules[__name__]).strip().splitlines()[1:],  # no module name
    ]
    return "\n".join(lines)


def _fail(message: str, code: int = 1):
    """Ends the process with `message` on one line of stderr, no traceback."""
    print(f"aejax: error: {' '.join(message.split())}", file=sys.stderr, flush=True)
    sys.exit(code)


def _message(error: BaseException) -> str:
    """An error's text; a KeyError's key unquoted (config_flags raises AttributeError(KeyError))."""
    inner = error.args[0] if len(error.args) == 1 else error
    if isinstance(inner, KeyError) and inner.args:
        inner = inner.args[0]
    return str(inner)


def parse_flags(argv: list[str]) -> list[str]:
    """absl's flag parsing, with aejax's own help and one-line errors (the traceback with
    --verbose)."""
    if any(arg in ("-h", "--help", "--helpshort", "--helpfull", "help") for arg in argv[1:]):
        print(usage())
        sys.exit(0)
    try:
        return flags.FLAGS(argv)
    except Exception as e:
        if "--verbose" in argv:
            raise
        _fail(_unknown_override(argv) or _message(e), 2)


def _unknown_override(argv: list[str]) -> str | None:
    """The error for the first `--config.GROUP.FIELD=value` that names no field of the config
    `--config` names, if one does (config_flags says only 'KeyError: FIELD')."""
    name = DEFAULT_CONFIG
    for i, arg in enumerate(argv):
        if arg == "--config" and i + 1 < len(argv):
            name = argv[i + 1]
        elif arg.startswith("--config="):
            name = arg.split("=", 1)[1]
    try:
        config = configs.load(name)
    except ValueError:
        return None
    for arg in argv:
        if arg.startswith("--config."):
            path = arg.removeprefix("--config.").split("=", 1)[0].split(".")
            problem = configs.unknown_field(config, path, arg)
            if problem:
                return problem
    return None


def main(argv: list[str]) -> None:
    try:
        _main(argv)
    except Exception as e:
        if _VERBOSE.value:
            raise
        _fail(f"{type(e).__name__}: {_message(e)} (--verbose shows the traceback)")


def _main(argv: list[str]) -> None:
    command = argv[1] if len(argv) > 1 else None
    if command == "show" and len(argv) == 3:
        print(configs.describe(argv[2]))
        return
    if len(argv) != 2 or command not in COMMANDS or command == "show":
        got = " ".join(argv[1:]) or "nothing"
        _fail(f"expected a command ({', '.join(COMMANDS)}; show takes a config), got {got}. "
              "aejax --help lists them", 2)  # fmt: skip
    logging.set_verbosity(logging.WARNING)  # Orbax logs every save at INFO; the epoch lines suffice
    parallel.initialize(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value)
    config = _CONFIG.value  # with what a bottleneck chosen by --config.model.bottleneck needs
    configs.set_part_defaults(config, config_flags.get_override_values(flags.FLAGS["config"]))
    mesh = parallel.make_mesh(_DEVICES.value, config.train.model_parallel)
    if parallel.is_main_process():
        print(parallel.describe(mesh), flush=True)
    if argv[1] == "pretrain":
        pretrain.pretrain_and_finetune(config, _WORKDIR.value, mesh)
        return
    loop.train_and_evaluate(
        config,
        _WORKDIR.value,
        max_steps=_MAX_STEPS.value,
        mesh=mesh,
        resume_changes=tuple(_RESUME_CHANGES.value),
    )
    if argv[1] == "represent" and parallel.is_main_process():  # the run is complete: measure it
        run = api.load_run(_WORKDIR.value)
        print(representation.evaluate_run(run.model, run.params, config, _WORKDIR.value))
    if argv[1] == "sampler" and parallel.is_main_process():
        fitted = api.load_run(_WORKDIR.value).fit_sampler(
            components=_COMPONENTS.value, kind=_KIND.value, epochs=_SAMPLER_EPOCHS.value
        )
        print(json.dumps(fitted), flush=True)
    if argv[1] == "fidelity" and parallel.is_main_process():
        data_cfg = config.data
        features = _FEATURES_WORKDIR.value or Path("runs/fidelity_features") / (
            Path(data_cfg.path).stem if data_cfg.path else data_cfg.name
        )
        run = api.load_run(_WORKDIR.value)
        print(json.dumps(fidelity.evaluate_run(run, features, samples=_SAMPLES.value)), flush=True)


def run() -> None:
    app.run(main, flags_parser=parse_flags)


if __name__ == "__main__":
    run()
