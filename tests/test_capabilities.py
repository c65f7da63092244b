"""Models declare what they can do: each shipped kind says whether it samples, reconstructs,
classifies or has a 2-D code, the declaration follows the bottleneck whatever the config's
name, the end-of-run figures are those the model declares, and the worked example of a new
generative bottleneck in docs/composable.md runs as written."""

import json
import re
from pathlib import Path

import jax
import jax.numpy as jnp
import pytest

from aejax import configs
from aejax.data import sources
from aejax.evaluation import figures
from aejax.models import factory

IMAGE_SHAPE = (28, 28, 1)
DOCS = Path(__file__).resolve().parents[1] / "docs"


def _fitted(name: str, **model_fields):
    """A shipped config, its model fitted to 28x28 digits of 10 classes."""
    config = configs.load(name)
    config.model.update(model_fields)
    config.model = factory.fit_to_data(config.model, IMAGE_SHAPE, 10, 1000)
    return config


def _declared(name: str, **model_fields):
    return factory.build(_fitted(name, **model_fields).model).capabilities


@pytest.mark.parametrize(
    "name, model_fields, samples, reconstructs, classifies, code_2d",
    [
        ("vae", {}, True, True, False, False),
        ("vae", {"latent_dim": 2}, True, True, False, True),
        ("conv_vae", {}, True, True, False, False),
        ("wae_mmd", {}, True, True, False, False),
        ("aae", {}, True, True, False, False),
        ("mlp", {}, False, True, False, False),
        ("mlp2d_relu", {}, False, True, False, True),  # a 2-D code with no prior to draw
        ("wta", {}, False, True, False, False),
        ("vqvae", {}, False, True, False, False),
        ("vqvae_prior", {}, True, False, False, False),
        ("conv_classifier", {}, False, False, True, False),
        ("sdae_classifier", {}, False, False, True, False),
    ],
)
def test_each_shipped_model_declares_what_it_does(
    name, model_fields, samples, reconstructs, classifies, code_2d
):
    declared = _declared(name, **model_fields)
    assert (declared.samples, declared.reconstructs, declared.classifies, declared.code_2d) == (
        samples,
        reconstructs,
        classifies,
        code_2d,
    )


def test_priors_are_told_apart():
    """A VAE's posterior has a density (the NLL reads it), a WAE's codes only match N(0, I); a
    VQ-VAE's codes are indices, which its learned prior draws."""
    vae, wae, vqvae, prior = (_declared(n) for n in ("vae", "wae_mmd", "vqvae", "vqvae_prior"))
    assert vae.normal_prior and vae.posterior_density
    assert wae.normal_prior and not wae.posterior_density
    assert vqvae.indexed_codes and not vqvae.normal_prior and not vqvae.learned_prior
    assert prior.learned_prior and not prior.normal_prior


@pytest.mark.parametrize(
    "name, bottleneck, model_fields, samples",
    [
        ("mlp", "deterministic", {"prior_match": "mmd"}, True),  # a WAE from the mlp config
        ("vae", "deterministic", {}, False),  # a VAE's config with a plain code
        ("conv", "gaussian", {"latent_dim": 2}, True),
    ],
)
def test_the_declaration_follows_the_bottleneck_not_the_configs_name(
    name, bottleneck, model_fields, samples
):
    declared = _declared(name, bottleneck=bottleneck, **model_fields)
    assert declared.samples == samples
    assert declared.code_2d == (model_fields.get("latent_dim") == 2)


def _write_figures(config, tmp_path) -> list[str]:
    """The files `figures.write_figures` leaves for `config`'s model at its initial
    parameters, beside a one-epoch metrics log."""
    model = factory.build(config.model)
    test_x, test_y = (a[:20] for a in sources.load("mnist5k", "test"))
    rngs = {"params": jax.random.key(0), "noise": jax.random.key(1)}
    params = jax.jit(model.init)(rngs, jnp.zeros((1, *IMAGE_SHAPE)))["params"]
    row = {"epoch": 1, "step": 1, "train/loss": 1.0, "test/loss": 1.0}
    (tmp_path / "metrics.jsonl").write_text(json.dumps(row) + "\n")
    figures.write_figures(tmp_path, model, params, test_x, config, jax.random.key(2), test_y)
    return sorted(path.name for path in tmp_path.iterdir() if path.suffix == ".png")


@pytest.mark.parametrize(
    "name, model_fields, pictures",
    [
        ("sdae_classifier", {}, ["loss_curves.png"]),
        pytest.param(
            "vqvae", {}, ["loss_curves.png", "reconstructions.png"], marks=pytest.mark.slow
        ),
        pytest.param(
            "vae2d",
            {"encoder_widths": (16,)},
            ["interpolations.png", "latent_scatter.png", "loss_curves.png", "manifold.png",
             "reconstructions.png", "samples.png"],  # fmt: skip
            marks=pytest.mark.slow,
        ),
        pytest.param(
            "vqvae_prior",
            {"embed_dim": 16, "num_layers": 1, "num_heads": 2},
            ["loss_curves.png", "samples.png"],
            marks=pytest.mark.slow,
        ),
    ],
)
def test_the_end_of_run_figures_are_those_the_model_declares(
    name, model_fields, pictures, tmp_path
):
    assert _write_figures(_fitted(name, **model_fields), tmp_path) == pictures


@pytest.mark.slow
def test_the_worked_example_of_a_new_generative_bottleneck_runs_as_written():
    page = (DOCS / "composable.md").read_text()
    section = page.split("## Adding a generative model", 1)[1].split("\n## ", 1)[0]
    [example] = re.findall(r"```python\n(.*?)```", section, re.DOTALL)
    namespace = {"__name__": "composable_example"}
    exec(compile(example, "composable.md", "exec"), namespace)  # its asserts hold
    model = namespace["model"]
    assert model.capabilities.samples and not model.capabilities.posterior_density
    assert namespace["metrics"]["kl"] > 0 and namespace["images"].shape == (8, *IMAGE_SHAPE)
