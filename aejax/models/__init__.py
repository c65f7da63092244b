"""The models: every one an `Autoencoder` of an encoder, a bottleneck and a decoder, chosen by
config, or a model that wraps one (a classifier on its code, a prior over its codes).

`build(config.model)` makes the module a config describes (`factory.py`); the parts live in
`mlp.py`, `conv.py` and `bottlenecks.py`, the wrappers in `classifier.py` and `code_prior.py`.
Each model declares what it can do as `model.capabilities` (`capabilities.py`).
"""

from aejax.models.capabilities import Capabilities
from aejax.models.factory import (
    BOTTLENECKS,
    CODEBOOKS,
    DECODERS,
    ENCODERS,
    MODELS,
    PRESETS,
    assigned_groups,
    build,
    fit_to_data,
    init_from_data,
    structure,
)

__all__ = [
    "BOTTLENECKS",
    "CODEBOOKS",
    "Capabilities",
    "DECODERS",
    "ENCODERS",
    "MODELS",
    "PRESETS",
    "assigned_groups",
    "build",
    "fit_to_data",
    "init_from_data",
    "structure",
]
