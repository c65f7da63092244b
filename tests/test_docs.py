"""Every command and code block of README.md and docs/*.md, run as written, shortened.

`pytest -q -m docs tests/test_docs.py` (tests marked `docs` run only when `-m` names them). One
test per page: its ```bash commands and ```python blocks run in order in one fresh folder, so
that a command can use the run an earlier one left. The folder holds copies of the checkout's
experiments/, benchmarks/ and docs pages, which the scripts need and write into; this
environment's `aejax` and `python` come first on PATH. ```text blocks are output, not run.

Long runs are shortened the same way on every page (docs/README.md says so): `aejax` commands
and `aejax.fit` train 1 epoch (AEJAX_FLAGS, PYTHON_SUBSTITUTIONS), and each script takes the
flags in SCRIPT_FLAGS in place of the command's own. A command that cannot run here is skipped
by a rule in SKIP and named with its reason in pytest's warnings summary; a page of which nothing
could run is reported skipped.
"""

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest

# Commands that cannot run here: (regex searched in the command as run, why). The reason is a
# string, or a function of the match that gives one, or None where the command can run after all.
SKIP = [
    (r"^python3 -m venv", ".ci/run runs them"),
    (r"\bpip install\b", "installs: the test runs in the installed environment"),
    (r"--coordinator_address", "needs two hosts"),
    (r"data\.name=cifar10", "needs internet: TFDS downloads cifar10"),
    (r"--config my_config\.py", "needs your own config file, my_config.py"),
    (r"data\.path=photos/", "needs a folder of your own photos"),
    (r"(?<![\w-])mnist\b", lambda m: needs_mnist()),  # full MNIST, not mnist5k or fashion_mnist
    (r"fashion_mnist", lambda m: _UNPREPARED.get("fashion_mnist")),
    (r"--devices (\d+)", lambda m: needs_devices(int(m[1]))),
    (r"benchmarks\.peers", lambda m: needs_modules("torch", "keras")),
]

# Short runs. `aejax COMMAND` takes these config overrides in place of the command's own:
AEJAX_FLAGS = {
    "train": {"--config.train.epochs": "1"},
    "represent": {"--config.train.epochs": "1"},
    "fidelity": {"--config.train.epochs": "1"},
    "sampler": {"--config.train.epochs": "1", "--sampler_epochs": "1"},
    "pretrain": {"--config.train.epochs": "1", "--config.pretrain.layer_epochs": "1"},
}
PYTHON_SUBSTITUTIONS = [  # aejax.fit's epochs: 1, given or not
    (r"\btrain__epochs=\d+", "train__epochs=1"),
    (r"(\baejax\.fit\(\s*\"[^\"]+\")(?![^\n]*train__epochs)", r"\1, train__epochs=1"),
]
# Each script takes these flags in place of the command's own (or beside them, where absent):
# 1 epoch, few importance samples and test images, and where the run would still take minutes
# here, fewer models (--only, --models) or one dataset.
SCRIPT_FLAGS = {
    "experiments/run_all.py": {
        "--epochs": "1", "--only": "mlp_reconstruction conv_classifier vae_samples"
    },
    "experiments/zoo_table.py": {"--epochs": "1", "--only": "linear vae conv"},
    "experiments/representation_table.py": {
        "--epochs": "1", "--finetune_epochs": "1", "--only": "sdae"
    },
    "experiments/pair_table.py": {
        "--epochs": "1", "--encoders": "mlp", "--bottlenecks": "deterministic gaussian",
        "--decoders": "mlp tied",
    },
    "experiments/sae_table.py": {"--epochs": "1", "--dataset": "mnist5k", "--variants": "topk"},
    "experiments/quantiser_bits.py": {"--epochs": "1", "--dataset": "mnist5k", "--bits": "6"},
    "experiments/vae_report.py": {"--epochs": "1", "--samples": "10", "--nll_images": "100"},
    "experiments/iwae_protocol.py": {
        "--epochs": "1", "--samples": "10", "--curve_images": "100", "--test_images": "100"
    },
    "experiments/generative_table.py": {
        "--epochs": "1", "--feature_epochs": "1", "--samples": "1000", "--nll_samples": "10",
        "--sampler_epochs": "1",
        "--nll_images": "100", "--only": "iwae", "--datasets": "fashion_mnist",
    },
    # The benchmarks time the epochs after the first (so 2 epochs), here on the embedded digits.
    "benchmarks.run": {
        "--dataset": "mnist5k", "--models": "mlp", "--sweep-models": "mlp", "--batch-sizes": "256",
        "--widths": "64", "--device-counts": "1 2", "--repeats": "1", "--min-seconds": "0.1",
    },
    "benchmarks.paths": {
        "--dataset": "mnist5k", "--models": "mlp", "--epochs": "2", "--rounds": "1"
    },
    "benchmarks.stream": {"--dataset": "mnist5k", "--epochs": "2"},
    "benchmarks.kill_soak": {"--kills": "1"},
    "benchmarks.peers.compare": {"--models": "mlp", "--epochs": "2", "--seeds": "0"},
}  # fmt: skip

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
TIMEOUT_S = 30 * 60  # one command; the longest shortened one takes a few minutes
IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
             "t10k-labels-idx1-ubyte")  # fmt: skip
_UNPREPARED: dict[str, str] = {}  # dataset -> why it could not be prepared


class CommandSkipped(UserWarning):
    """A documented command that a SKIP rule kept from running, with the rule's reason."""


def needs_mnist() -> str | None:
    folder = os.environ.get("AEJAX_IDX_DIR")
    files = [Path(folder or "/nonexistent") / n for n in IDX_FILES]
    if all(f.is_file() or f.with_name(f"{f.name}.gz").is_file() for f in files):
        return None
    return f"needs the MNIST IDX files in $AEJAX_IDX_DIR ({folder or 'unset'})"


def needs_devices(count: int) -> str | None:
    import jax

    seen = jax.local_device_count()
    return None if seen >= count else f"needs {count} devices, JAX sees {seen} here"


def needs_modules(*names: str) -> str | None:
    import importlib.util

    missing = [m for m in names if importlib.util.find_spec(m) is None]
    return f"needs {' and '.join(missing)} (not installed)" if missing else None


def blocks(page: Path) -> list[tuple[str, int, str]]:
    """(language, line of its first line, text) of each fenced block; untagged: language ""."""
    found, lines = [], page.read_text().splitlines()
    start = None
    for i, line in enumerate(lines):
        fence = re.match(r"\s*```(\S*)", line)
        if fence and start is None:
            start, language = i + 1, fence[1]
        elif fence:
            found.append((language, start + 1, "\n".join(lines[start:i])))
            start = None
    return found


def commands(first_line: int, text: str) -> list[tuple[int, str]]:
    """(page line, command) of a bash block: comments and blank lines dropped, continued lines
    joined."""
    found, pending = [], None
    for offset, line in enumerate(text.splitlines()):
        if pending is None:
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            pending = (first_line + offset, "")
        pending = (pending[0], pending[1] + line.rstrip().removesuffix("\\"))
        if not line.rstrip().endswith("\\"):
            found.append(pending)
            pending = None
    return found


def skip_reason(command: str) -> str | None:
    """The reason of the first SKIP rule that keeps `command` from running here, if one does."""
    for pattern, reason in SKIP:
        match = re.search(pattern, command)
        why = reason(match) if match and callable(reason) else reason if match else None
        if why:
            return why
    return None


def _set_flags(tokens: list[str], flags: dict[str, str]) -> list[str]:
    """`tokens` with each flag's values (`--f=v` or `--f v [v ...]`) replaced by `flags`'."""
    out, i = [], 0
    while i < len(tokens):
        name = tokens[i].split("=", 1)[0]
        if name in flags:
            valued, i = "=" in tokens[i], i + 1
            while not valued and i < len(tokens) and not tokens[i].startswith("-"):
                i += 1  # the values of `--flag v [v ...]`
            continue
        out.append(tokens[i])
        i += 1
    for name, value in flags.items():
        out += [f"{name}={value}"] if name.startswith("--config.") else [name, *value.split()]
    return out


def shorten(command: str) -> str:
    """The command as the test runs it: a long run made short (SCRIPT_FLAGS, AEJAX_FLAGS)."""
    tokens = shlex.split(command, comments=True)
    env = 0
    while env < len(tokens) and re.match(r"\w+=", tokens[env]):
        env += 1
    program = tokens[env : env + 3]
    if program[:1] == ["aejax"] and program[1:2] and program[1] in AEJAX_FLAGS:
        flags = AEJAX_FLAGS[program[1]]
    elif program[:1] == ["python"] and program[1:2] == ["-m"] and program[2:] != []:
        flags = SCRIPT_FLAGS.get(program[2], {})
    elif program[:1] == ["python"] and program[1:]:
        flags = SCRIPT_FLAGS.get(program[1], {})
    else:
        return command
    if not flags:
        return command
    if any(t in ("&&", "||", "|", ";") for t in tokens):
        raise ValueError(f"cannot shorten a command with shell operators: {command}")
    return shlex.join(_set_flags(tokens, flags))


def run(argv: list[str], folder: Path, env: dict, stdin: str | None = None):
    """(exit status, stdout, stderr) of `argv` in `folder`; its process group killed at
    TIMEOUT_S, so that the workers a script started go too."""
    proc = subprocess.Popen(
        argv, cwd=folder, env=env, text=True, start_new_session=True, stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        out, err = proc.communicate(stdin, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        err += f"\n(killed after {TIMEOUT_S} s)"
    return proc.returncode, out, err


@pytest.fixture(scope="session")
def prepared_datasets(_private_data_dir):
    """MNIST from $AEJAX_IDX_DIR and Fashion-MNIST from its default folder, prepared once: one
    $AEJAX_IDX_DIR cannot name both datasets' folders, and a prepared dataset is read without
    its sources."""
    from aejax.data import sources

    idx_dir = os.environ.pop("AEJAX_IDX_DIR", None)
    try:
        for name, folder in (("fashion_mnist", None), ("mnist", idx_dir)):
            if name == "mnist" and needs_mnist():
                continue
            try:
                sources.prepared(name, idx_dir=folder)
            except Exception as e:  # noqa: BLE001 (any failure: the commands that need it skip)
                _UNPREPARED[name] = f"needs {name}: {' '.join(str(e).split())[:300]}"
    finally:
        if idx_dir is not None:
            os.environ["AEJAX_IDX_DIR"] = idx_dir


def _tail(text: str, chars: int = 4000) -> str:
    return text if len(text) <= chars else "..." + text[-chars:]


RUNNABLE = [p for p in PAGES if any(lang in ("bash", "python") for lang, _, _ in blocks(p))]


def test_every_block_says_its_language():
    """An untagged fence would be neither run nor marked as output: bash, python or text."""
    untagged = [
        f"{p.relative_to(REPO)}:{line}" for p in PAGES for lang, line, _ in blocks(p) if not lang
    ]
    assert not untagged, f"fenced blocks without a language (bash, python or text): {untagged}"


@pytest.mark.docs
@pytest.mark.parametrize("page", RUNNABLE, ids=lambda p: str(p.relative_to(REPO)))
def test_page_runs_as_written(page, tmp_path, prepared_datasets):
    for name in ("experiments", "benchmarks"):
        shutil.copytree(REPO / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "docs").mkdir()
    for doc in (REPO / "docs").glob("*.md"):
        shutil.copy(doc, tmp_path / "docs")
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]])
    env = {**os.environ, "PATH": path}
    where = page.relative_to(REPO)
    ran, skipped, exports = 0, [], ""
    for language, first_line, text in blocks(page):
        if language == "python":
            steps = [(first_line, text)]
        elif language == "bash":
            steps = commands(first_line, text)
        else:
            continue
        for line, command in steps:
            if language == "python":
                as_run = command
                for pattern, replacement in PYTHON_SUBSTITUTIONS:
                    as_run = re.sub(pattern, replacement, as_run)
                argv, stdin = [sys.executable, "-"], as_run
            else:
                as_run = shorten(command)
                argv, stdin = ["bash", "-c", exports + as_run], None
            reason = skip_reason(as_run)
            if reason:
                skipped.append((line, reason))
                continue
            start = time.perf_counter()
            status, out, err = run(argv, tmp_path, env, stdin)
            print(f"{where}:{line} {time.perf_counter() - start:.0f} s: {as_run}", flush=True)
            if status:
                pytest.fail(
                    f"{where}:{line} exited with {status}\n$ {as_run}\n{_tail(err or out)}",
                    pytrace=False,
                )
            if language == "bash" and command.startswith("export "):
                exports += command + "\n"
            ran += 1
    for line, reason in skipped:  # reported with the command's line of the page
        warnings.warn_explicit(reason, CommandSkipped, str(where), line)
    if not ran:
        pytest.skip("; ".join(f"{where}:{line}: {reason}" for line, reason in skipped))
