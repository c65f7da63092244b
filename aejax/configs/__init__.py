"""The shipped configs, one module per model, part of the package so an installed wheel has them.

`aejax train --config NAME` trains one by name; a variant starts from the config it varies with
`configs.get(NAME)` and sets only what differs.
"""

import copy
import difflib
import functools
import importlib
import importlib.resources
import importlib.util
import inspect
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import ml_collections

from aejax.configs import fields
from aejax.models import bottlenecks, sae
from aejax.models import conv as conv_parts  # beside the config module conv.py

NOT_CONFIGS = ("fields",)  # modules of this package that build no config of their own


def names() -> list[str]:
    """The shipped configs' names, read from the package's files (in a wheel or a checkout)."""
    files = importlib.resources.files(__name__).iterdir()
    stems = (f.name[:-3] for f in files if f.name.endswith(".py") and f.name[0] != "_")
    return sorted(stem for stem in stems if stem not in NOT_CONFIGS)


def docstring(name: str) -> str:
    """The docstring of shipped config `name`: what it is, and the command that trains it."""
    return importlib.import_module(f"{__name__}.{name}").__doc__.strip()


def summary(name: str) -> str:
    """What shipped config `name` is, in a few words: its docstring up to the first colon, at
    most 80 characters."""
    words = " ".join(docstring(name).split("\n\n")[0].split()).split(": ")[0]
    return words if len(words) <= 80 else words[:77].rsplit(" ", 1)[0] + " ..."


def get(name: str) -> ml_collections.ConfigDict:
    """The shipped config `name`, unlocked: what a variant builds on (`aejax.configs.load` locks)."""
    if name not in names():
        raise ValueError(f"no shipped config {name!r}; the shipped ones: {', '.join(names())}")
    return importlib.import_module(f"{__name__}.{name}").get_config()


def load(name_or_path: str | Path) -> ml_collections.ConfigDict:
    """A shipped config by name (`aejax.names()`) or `get_config()` of a config file,
    locked: setting a field it does not declare is an error."""
    if str(name_or_path) in names():
        config = get(str(name_or_path))
    else:
        path = Path(name_or_path)
        if path.suffix != ".py" or not path.is_file():
            raise ValueError(
                f"config {str(name_or_path)!r} is neither a shipped config "
                f"({', '.join(names())}) nor a .py file with get_config()"
            )
        spec = importlib.util.spec_from_file_location(f"aejax_config_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        config = module.get_config()
    config.lock()
    return config


def override(config: ml_collections.ConfigDict, **overrides: Any) -> ml_collections.ConfigDict:
    """A copy of `config` with `group__field=value` set as `config.group.field = value`, and
    the defaults of a part it chooses (`set_part_defaults`).

    Keyword names cannot hold dots, so a double underscore separates the levels. An undeclared
    field or a value of the wrong type is an error naming the field.
    """
    config = copy.deepcopy(config)
    for key, value in overrides.items():
        path = key.split("__")
        problem = unknown_field(config, path, key)
        if problem:
            raise ValueError(problem)
        _set(config, path, value)
    set_part_defaults(config, [key.replace("__", ".") for key in overrides])
    return config


def _set(config: ml_collections.ConfigDict, path: list[str], value: Any) -> None:
    group = functools.reduce(lambda g, name: g[name], path[:-1], config)
    try:
        group[path[-1]] = value
    except TypeError as e:
        raise ValueError(f"{'.'.join(path)}={value!r}: {e}") from None


def set_part_defaults(config: ml_collections.ConfigDict, overridden: Iterable[str]) -> None:
    """Sets in `config`, whose dotted fields `overridden` the user set, the fields that a part
    they chose needs, where they set none: a bottleneck's to learn (`bottlenecks.DEFAULTS`), a
    convolutional encoder's or decoder's to train at speed (`conv.DEFAULTS`).

    A config's settings suit its own parts: `conv`'s per-pixel mean made a VQ codebook
    collapse, and `mlp`'s long compiled chunks ran a conv decoder 50x slower. Set here, they are
    recorded in the run's config.json like any value.
    """
    overridden, model = set(overridden), config.model
    defaults = {}
    if "model.bottleneck" in overridden:
        kinds = sae.DEFAULTS if model.name == "sae" else bottlenecks.DEFAULTS
        defaults |= kinds.get(model.bottleneck, {})
    chose_conv = ("model.encoder" in overridden and model.encoder in conv_parts.ENCODERS) or (
        "model.decoder" in overridden and model.decoder in conv_parts.DECODERS
    )
    if chose_conv:
        defaults |= conv_parts.DEFAULTS
    for path, value in defaults.items():
        if path not in overridden:
            _set(config, path.split("."), value)


def unknown_field(config: ml_collections.ConfigDict, path: list[str], key: str) -> str | None:
    """None if `config` declares the field at `path`, else the error for `key`, which set it:
    the field, the nearest names, and where to see them."""
    group = config
    for depth, name in enumerate(path):
        if not isinstance(group, ml_collections.ConfigDict) or name not in group:
            break
        group = group[name]
    else:
        return None
    field = ".".join(path[: depth + 1])
    if not isinstance(group, ml_collections.ConfigDict):
        return f"the config has no field {field} ({key}): {'.'.join(path[:depth])} is a value"
    close = difflib.get_close_matches(path[depth], list(group.keys()), n=3)
    hint = f"did you mean {' or '.join('.'.join([*path[:depth], c]) for c in close)}? " if close else ""
    return (
        f"the config has no field {field} ({key}); {hint}`aejax show CONFIG` lists a config's "
        "fields"
    )


# `config.GROUP.FIELD = value  # comment`, or `conv.model.FIELD = ...` on a config a variant builds on.
_ASSIGNMENT = re.compile(r"^\s*\w+((?:\.\w+)+)\s*=[^#]*?(?:#\s*(.*))?$")


def _comments(source: str) -> dict[str, str]:
    """{dotted field: its comment} of the assignments in a config's source: the comment on the
    line, after the comment lines just above it."""
    found, above = {}, []
    for line in source.splitlines():
        if line.strip().startswith("#"):
            above.append(line.strip().lstrip("#").strip())
            continue
        match = _ASSIGNMENT.match(line)
        if match:
            text = " ".join([*above, match.group(2) or ""]).strip()
            if text:
                found[match.group(1)[1:]] = text
        above = []
    return found


def _sources(name_or_path: str | Path) -> list[str]:
    """The sources a config is built from, its own first: a model group it takes from `fields`
    (`fields.sae_model`), the configs it varies (`configs.get`), then `base()`'s."""
    if str(name_or_path) in names():
        source = inspect.getsource(importlib.import_module(f"aejax.configs.{name_or_path}"))
    else:
        source = Path(name_or_path).read_text()
    parents = re.findall(r"configs\.get\(\"(\w+)\"\)", source)
    groups = [inspect.getsource(getattr(fields, g)) for g in re.findall(r"fields\.(\w+_model)\(", source)]
    inherited = (s for parent in parents for s in _sources(parent)[:-1])
    return [source, *groups, *inherited, _base_source()]


def _base_source() -> str:
    """The source of `fields.base` and of the groups it adds, where the shared fields are."""
    return "\n".join(inspect.getsource(f) for f in (fields.base, *fields.GROUPS))


def describe(name_or_path: str | Path) -> str:
    """What `aejax show` prints: the config's docstring, then each field, its value and comment
    (the config's own, else that of the config it varies, else `base()`'s)."""
    config = load(name_or_path)
    by_path, by_name = {}, {}
    for source in reversed(_sources(name_or_path)):  # later (more specific) comments win
        for path, text in _comments(source).items():
            by_path[path] = text
            by_name[path.rsplit(".", 1)[-1]] = text
    if str(name_or_path) in names():
        head = docstring(str(name_or_path))
    else:
        head = f"{name_or_path}: a config file"
    lines = [head, ""]
    for path, value, _ in leaves(config):
        text = by_path.get(path) or by_name.get(path.rsplit(".", 1)[-1], "")
        lines.append(f"{path} = {value!r}" + (f"  # {text}" if text else ""))
    lines += ["", f"Override any field: aejax train --config {name_or_path} --config.FIELD=VALUE"]
    return "\n".join(lines)


def leaves(group: ml_collections.ConfigDict, prefix: str = ""):
    """(dotted path, value, declared type) of every field that is not a group, in declaration
    order."""
    for key in group.keys():
        value = group[key]
        if isinstance(value, ml_collections.ConfigDict):
            yield from leaves(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value, group.get_type(key)
