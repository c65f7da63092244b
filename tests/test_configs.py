"""Configs: shipped inside the package, loaded by name or path, every field declared, so every
field can be overridden from the command line and a misspelt one is an error."""

from pathlib import Path

import pytest
from absl import flags

import aejax
from aejax import cli, configs
from aejax.data import sources


def parse(*args: str):
    """The config `aejax ARGS` would train: main.py's own flag, on a fresh flag registry."""
    argv = ["aejax", *args]
    flag_values = flags.FlagValues()
    holder = cli.define_config_flag(flag_values, sys_argv=argv)
    flag_values(argv)
    return holder.value


def another_value(value, kind):
    """A value of the field's type that differs from `value`, and how a shell would write it."""
    if kind is bool:
        return (not value), str(not value)
    if kind is int:
        new = 3 if value is None else value + 1
        return new, str(new)
    if kind is float:
        new = 0.25 if value is None else value * 2 + 0.5
        return new, repr(new)
    if kind is str:
        new = "pixel_means" if value is None else f"{value}_x"
        return new, new
    if kind is tuple:
        new = (*value[:-1], value[-1] + 1) if value and isinstance(value[-1], int) else (*(value or ()), 3)
        return new, repr(new)
    return "x", "x"  # an untyped None: the command line cannot override it, so this fails there


@pytest.mark.parametrize("name", configs.names())
def test_every_field_of_every_shipped_config_can_be_overridden_from_the_command_line(name):
    fields = list(configs.leaves(configs.load(name)))
    assert len(fields) > 25  # base() alone declares more: the walk reached the groups
    wanted, args = {}, []
    for path, value, kind in fields:
        wanted[path], text = another_value(value, kind)
        args.append(f"--config.{path}={text}")
    config = parse(f"--config={name}", *args)
    for path, value in wanted.items():
        got = config
        for key in path.split("."):
            got = got[key]
        assert got == value, path


def test_the_options_readme_documents_override_the_default_config():
    config = parse("--config.loss.kl_warmup_steps=100", "--config.loss.variance=0.5")
    assert config.model.name == "vae"
    assert config.loss.kl_warmup_steps == 100 and config.loss.variance == 0.5


def test_a_config_by_name_and_by_its_file_are_the_same():
    path = Path(configs.__file__).with_name("tied.py")
    assert parse("--config=tied").to_dict() == parse(f"--config={path}").to_dict()
    assert configs.load("tied").to_dict() == configs.load(path).to_dict()


def test_an_unknown_config_is_refused_naming_the_shipped_ones():
    with pytest.raises(flags.IllegalFlagValueError, match="neither a shipped config .*conv_vae"):
        parse("--config=cnv_vae")
    with pytest.raises(ValueError, match="neither a shipped config"):
        configs.load("cnv_vae")


def test_a_misspelt_field_is_an_error_wherever_it_is_set():
    with pytest.raises(AttributeError, match='Did you mean "kl_warmup_steps"'):
        parse("--config.loss.kl_warmup_step=100")
    with pytest.raises(ValueError, match="no field loss.kl_warmup_step "):
        configs.override(configs.load("vae"), loss__kl_warmup_step=100)
    config = configs.load("vae")
    with pytest.raises(AttributeError, match="cannot be added since the config is locked"):
        config.loss.kl_warmup_step = 100


def test_a_misspelt_fit_keyword_is_one_short_message_with_the_nearest_field(tmp_path):
    train = sources.load("mnist5k", "train")
    with pytest.raises(ValueError) as error:
        aejax.fit("mlp", train=train, workdir=tmp_path / "run", opt__lrr=0.1)
    assert str(error.value) == (
        "the config has no field opt.lrr (opt__lrr); did you mean opt.lr? `aejax show CONFIG` "
        "lists a config's fields"
    )
    assert not (tmp_path / "run").exists()


def test_override_sets_nested_fields_on_a_copy():
    config = configs.load("denoising")
    changed = configs.override(config, opt__lr=3e-4, loss__corruption__factor=0.25)
    assert (changed.opt.lr, changed.loss.corruption.factor) == (3e-4, 0.25)
    assert (config.opt.lr, config.loss.corruption.factor) == (1e-3, 0.5)
    with pytest.raises(ValueError, match="opt.lr='fast'"):
        configs.override(config, opt__lr="fast")


def test_choosing_a_bottleneck_by_override_brings_what_it_needs_unless_set_too():
    conv = configs.load("conv")
    vq = configs.override(conv, model__bottleneck="vq", model__code_activation="tanh")
    assert (vq.loss.reduction, vq.model.code_activation) == ("sum", "tanh")  # the user's wins
    assert (conv.loss.reduction, conv.model.code_activation) == ("mean", "relu")
    assert configs.override(conv, model__bottleneck="gaussian").loss.reduction == "sum"
    fsq = configs.override(conv, model__bottleneck="fsq")
    assert (fsq.loss.reduction, fsq.model.code_activation) == ("mean", "linear")  # no terms
    lfq = configs.override(configs.load("vqvae"), model__bottleneck="lfq")
    assert lfq.model.code_dim == 4  # vqvae's 16 bits would be 65,536 entries to enumerate
    kept = configs.override(conv, model__decoder="transpose", model__bottleneck="wta")
    assert (kept.loss.reduction, kept.model.code_activation) == ("mean", "relu")  # no defaults


def test_choosing_a_convolutional_part_by_override_compiles_single_steps_unless_set_too():
    mlp = configs.load("mlp")
    assert mlp.train.chunk > 1
    assert configs.override(mlp, model__decoder="nearest").train.chunk == 1
    assert configs.override(mlp, model__encoder="resnet").train.chunk == 1
    assert configs.override(mlp, model__encoder="conv", train__chunk=50).train.chunk == 50
    assert configs.override(mlp, model__decoder="tied").train.chunk == mlp.train.chunk
