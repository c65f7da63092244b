"""The shipped configs, one module per model, part of the package so an installed wheel has them.

`aejax train --config NAME` trains one by name; a variant starts from the config it varies with
`configs.get(NAME)` and sets only what differs.
"""

import importlib
import importlib.resources

import ml_collections


def names() -> list[str]:
    """The shipped configs' names, read from the package's files (in a wheel or a checkout)."""
    files = importlib.resources.files(__name__).iterdir()
    return sorted(f.name[:-3] for f in files if f.name.endswith(".py") and f.name[0] != "_")


def docstring(name: str) -> str:
    """The docstring of shipped config `name`: what it is, and the command that trains it."""
    return importlib.import_module(f"{__name__}.{name}").__doc__.strip()


def summary(name: str) -> str:
    """What shipped config `name` is, in a few words: its docstring up to the first colon, at
    most 80 characters."""
    words = " ".join(docstring(name).split("\n\n")[0].split()).split(": ")[0]
    return words if len(words) <= 80 else words[:77].rsplit(" ", 1)[0] + " ..."


def get(name: str) -> ml_collections.ConfigDict:
    """The shipped config `name`, unlocked: what a variant builds on (`aejax.config.load` locks)."""
    if name not in names():
        raise ValueError(f"no shipped config {name!r}; the shipped ones: {', '.join(names())}")
    return importlib.import_module(f"{__name__}.{name}").get_config()
