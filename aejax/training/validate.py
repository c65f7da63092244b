"""A run's settings checked once, up front, so a bad value is named before any work is done.

Fields are checked by name wherever they sit (a classifier's `model.autoencoder` group has the
same widths as a model group), and only those present: groups a config leaves out, and fields
set to None (not used), pass. What needs the data (a batch no larger than the training set)
or the built model (a sparsity penalty on a sigmoid code) is checked where those are made.
"""

import math
from pathlib import Path

import ml_collections

from aejax.training import checkpoint


def _positive_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 1


def _positive_ints(v) -> bool:
    return isinstance(v, (tuple, list)) and len(v) > 0 and all(_positive_int(w) for w in v)


def _non_negative_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _positive(v) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v) and v > 0


def _non_negative(v) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v) and v >= 0


def _probability(v) -> bool:
    return isinstance(v, (int, float)) and 0 <= v <= 1


def _open_unit(v) -> bool:
    return isinstance(v, (int, float)) and 0 < v < 1


def _fraction(v) -> bool:
    return isinstance(v, (int, float)) and 0 < v <= 1


_POSITIVE_INT = (_positive_int, "a positive integer")
_POSITIVE_INTS = (_positive_ints, "a non-empty tuple of positive integers")
_POSITIVE = (_positive, "a positive finite number")
_NON_NEGATIVE = (_non_negative, "a finite number >= 0")
_PROBABILITY = (_probability, "a probability in [0, 1]")

# Last field name -> (test, what it must be). Names that mean different things in different
# groups are keyed by their group too ("regularizers.*.weight" is any penalty's weight).
RULES = {
    "encoder_widths": _POSITIVE_INTS,
    "encoder_features": _POSITIVE_INTS,
    "decoder_features": _POSITIVE_INTS,
    "latent_dim": _POSITIVE_INT,
    "decoder_widths": (lambda v: all(_positive_int(w) for w in v), "a tuple of positive integers"),
    "discriminator_widths": _POSITIVE_INTS,
    "num_codes": _POSITIVE_INT,
    "code_dim": _POSITIVE_INT,
    "ema_decay": (_open_unit, "a decay strictly between 0 and 1"),
    "rvq_levels": _POSITIVE_INT,
    "flow_layers": _POSITIVE_INT,
    "pseudo_inputs": _POSITIVE_INT,
    "fsq_levels": (
        lambda v: _positive_ints(v) and min(v) >= 2, "a non-empty tuple of integers >= 2"
    ),
    "lfq_temperature": _POSITIVE,
    "lifetime_rate": (_fraction, "a fraction in (0, 1]"),
    "dataset_size": _POSITIVE_INT,
    "commitment_weight": _NON_NEGATIVE,
    "entropy_weight": _NON_NEGATIVE,
    "diversity_weight": _NON_NEGATIVE,
    "mmd_weight": _NON_NEGATIVE,
    "adversarial_weight": _NON_NEGATIVE,
    "tc_weight": _NON_NEGATIVE,
    "num_classes": _POSITIVE_INT,
    "image_shape": (
        lambda v: _positive_ints(v) and len(v) in (1, 3),
        "three positive integers H, W, C (an image) or one, D (a vector)",
    ),
    "latents": _POSITIVE_INT,
    "expansion": _POSITIVE_INT,
    "k": _POSITIVE_INT,
    "aux_k": _POSITIVE_INT,
    "dead_after": _POSITIVE_INT,
    "threshold_decay": (_open_unit, "a decay strictly between 0 and 1"),
    "threshold_init": _POSITIVE,
    "bandwidth": _POSITIVE,
    "sparsity_weight": _NON_NEGATIVE,
    "auxk_weight": _NON_NEGATIVE,
    "data.layer": (_non_negative_int, "an integer >= 0, a dense encoder layer (unset: the code)"),
    "normalize": (lambda v: v in ("mean_square", "none"), "'mean_square' or 'none'"),
    "vector_scale": _POSITIVE,
    "data_variance": _POSITIVE,
    "kl_weight": _NON_NEGATIVE,
    "kl_warmup_steps": (_non_negative_int, "an integer >= 0"),
    "iwae_samples": _POSITIVE_INT,
    "iwae_groups": _POSITIVE_INT,
    "ciwae_beta": _PROBABILITY,
    "variance": _POSITIVE,
    "factor": _NON_NEGATIVE,  # a corruption's noise scale
    "keep_prob": _PROBABILITY,
    "fraction": _PROBABILITY,
    "regularizers.*.weight": _NON_NEGATIVE,
    "kl_sparsity.target": (_open_unit, "a rate strictly between 0 and 1"),
    "lr": _POSITIVE,
    "lr_decay": _POSITIVE,
    "label_fraction": (_fraction, "a fraction in (0, 1]"),
    "max_pixels": _POSITIVE_INT,
    "batch_size": _POSITIVE_INT,
    "epochs": _POSITIVE_INT,
    "chunk": _POSITIVE_INT,
    "eval_batch_size": _POSITIVE_INT,
    "model_parallel": _POSITIVE_INT,
    "save_every_steps": _POSITIVE_INT,
    "keep_checkpoints": _POSITIVE_INT,
    "layer_epochs": _POSITIVE_INT,
    "embed_dim": _POSITIVE_INT,
    "num_layers": _POSITIVE_INT,
    "num_heads": _POSITIVE_INT,
}


def _rule(path: str):
    parts = path.split(".")
    for key in (".".join(parts[-3:-2] + ["*"] + parts[-1:]), ".".join(parts[-2:]), parts[-1]):
        if key in RULES:
            return RULES[key]
    return None


def config(config: ml_collections.ConfigDict) -> None:
    """Raises ValueError naming every field whose value cannot work, and what it must be."""
    problems = []
    for path, value in checkpoint.flatten(config.to_dict()).items():
        rule = _rule(path)
        if rule is not None and value is not None and not rule[0](value):
            problems.append(f"{path}={value!r} must be {rule[1]}")
    vq_prior = config.get("model", {}).get("name") == "code_prior"
    if vq_prior and not config.train.init_from:
        problems.append(
            "model.name='code_prior' models the codes of a trained VQ-VAE: set "
            "train.init_from to that run's workdir"
        )
    if problems:
        raise ValueError(
            "invalid config: " + "; ".join(problems) + ". Fix these fields in the config file "
            "or override them, e.g. --config.FIELD=VALUE."
        )


def run_args(workdir: str | Path, max_steps: int | None) -> None:
    """Raises ValueError for a `max_steps` below 1 or a workdir that cannot be a directory."""
    if max_steps is not None and not _positive_int(max_steps):
        raise ValueError(f"max_steps={max_steps!r} must be at least 1 (or None: train to the end)")
    path = Path(workdir).absolute()
    for existing in (path, *path.parents):
        if existing.exists():
            if not existing.is_dir():
                raise ValueError(
                    f"workdir {workdir} cannot be created: {existing} is a file, not a directory. "
                    "Pass another --workdir, or move that file away."
                )
            return
