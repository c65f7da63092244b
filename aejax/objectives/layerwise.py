"""The objective of one phase of greedy layer-wise pretraining of a stacked autoencoder.

Phase k feeds the input through encoder layers 0..k-1, corrupts that code if the loss asks
(denoising), encodes it with encoder layer k and decodes it with its mirror, decoder layer
D-1-k; the target is the clean code. Phase 0 reconstructs pixels with the config's likelihood;
later phases reconstruct hidden codes with squared error. The stack is an MLP autoencoder
(dense layers) or a conv one (conv-relu-pool layers, mirrored by the transposed or resizing
decoder's layers, whose maps retrace the encoder's sides; phase 0's mirror ends in the
decoder's logits convolution). Each layer is applied through the model's own module on its
slice of the one parameter tree, so the phases train exactly the layers the whole autoencoder
uses. A tied autoencoder's mirror is encoder layer k's kernel transposed with the decoder's
bias k: one parameter, used twice within the phase as in the whole model. An L2 penalty in
the config carries into every phase, on the phase's kernels (a tied kernel once), as the
phases of Geron's "Hands-On Machine Learning with Scikit-Learn and TensorFlow" (ch. 15) each
add their own layers' penalty.
"""

from collections.abc import Callable
from typing import NamedTuple

import ml_collections

from aejax.models import conv, factory, mlp
from aejax.objectives import autoencoding, corruptions, likelihoods, regularizers

# A conv decoder's layer name by kind: only these retrace the encoder's sides layer by layer.
CONV_MIRROR_LAYERS = {kind: cls.mirror for kind, cls in conv.DECODERS.items() if cls.mirror}


def depth(model_cfg: ml_collections.ConfigDict) -> int:
    """The number of encoder layers, one greedy phase each."""
    if factory.structure(model_cfg)[0] == "mlp":
        return len(model_cfg.encoder_widths)
    return len(model_cfg.encoder_features)


def trainable_pair(model_cfg: ml_collections.ConfigDict, layer: int) -> tuple[str, ...]:
    """Parameter paths of encoder layer `layer` and its mirror decoder layer, for
    `opt.trainable`: its dense layer, for a tied model its bias; a conv model's layer 0 is
    mirrored together with the decoder's logits convolution."""
    encoder, _, decoder = factory.structure(model_cfg)
    mirror = depth(model_cfg) - 1 - layer
    if decoder == "tied":
        return f"encoder/mlp/dense{layer}", f"decoder/bias{layer}"
    if encoder == "mlp":
        return f"encoder/mlp/dense{layer}", f"decoder/mlp/dense{mirror}"
    pair = (f"encoder/conv{layer}", f"decoder/{CONV_MIRROR_LAYERS.get(decoder, 'conv')}{mirror}")
    return (*pair, "decoder/logits") if layer == 0 else pair


class _Stack(NamedTuple):
    """A stacked autoencoder as greedy phases see it."""

    depth: int
    flat: bool  # the layers read flattened images (dense) or maps (conv)
    tied: bool  # the mirror's kernel is the encoder layer's: the L2 counts it once
    encode: Callable  # (params, i, h) -> encoder layer i's output
    encoder_params: Callable  # (params, i) -> encoder layer i's parameters
    mirror: Callable  # (params, i, code) -> the decoder layer mirroring encoder layer i
    mirror_params: Callable  # (params, i) -> that decoder layer's parameters


def _dense(layer_params: dict, h_BxD, activation: str):
    width = layer_params["kernel"].shape[1]
    layer = mlp.MLP((width,), final_activation=activation)
    return layer.apply({"params": {"dense0": layer_params}}, h_BxD)


def _mlp_stack(encoder: mlp.MLPEncoder, decoder) -> _Stack:
    depth, tied = len(encoder.widths), decoder.mirror == "tied"

    def encoder_params(params, i):
        return params["encoder"]["mlp"][f"dense{i}"]

    def encode(params, i, h_BxD):
        last = encoder.activation if i < depth - 1 else encoder.code_activation
        return _dense(encoder_params(params, i), h_BxD, last)

    def mirror_params(params, i):
        """A tied layer's kernel is the encoder's, transposed (the very parameter, so its
        gradient sums both uses)."""
        if tied:
            kernel = params["encoder"]["mlp"][f"dense{i}"]["kernel"]
            return {"kernel": kernel.T, "bias": params["decoder"][f"bias{i}"]}
        return params["decoder"]["mlp"][f"dense{depth - 1 - i}"]

    def mirror(params, i, code):  # logits for layer 0, a hidden code (activated) after
        return _dense(mirror_params(params, i), code, "linear" if i == 0 else decoder.activation)

    return _Stack(depth, True, tied, encode, encoder_params, mirror, mirror_params)


def _conv_stack(encoder: conv.ConvEncoder, decoder) -> _Stack:
    depth, kind = len(encoder.features), conv.decoder_name(decoder)
    if kind not in CONV_MIRROR_LAYERS:
        which = f"the {kind!r} decoder's maps do not (for 28: 4-8-16-14-28)" if kind else (
            f"a {type(decoder).__name__} has no such layers"
        )
        raise ValueError(
            f"greedy pretraining pairs each conv encoder layer with one decoder layer that "
            f"retraces its sides; {which}: set model.decoder to one of "
            f"{sorted(CONV_MIRROR_LAYERS)}"
        )
    channels = [*reversed(encoder.features[:-1])]
    if tuple(decoder.features[: depth - 1]) != tuple(channels):
        raise ValueError(
            "greedy pretraining makes decoder layer j give back encoder layer D-2-j's output, "
            f"so decoder_features must start with the encoder's channels reversed, {channels} "
            f"(the last is free); got encoder_features={tuple(encoder.features)}, "
            f"decoder_features={tuple(decoder.features)}"
        )
    name = decoder.mirror

    def encoder_params(params, i):
        return params["encoder"][f"conv{i}"]

    def encode(params, i, h):
        return encoder.apply({"params": params["encoder"]}, h, layers=(i, i + 1))

    def mirror(params, i, code):  # layer 0's mirror ends in the logits convolution
        j = depth - 1 - i
        return decoder.apply({"params": params["decoder"]}, code, layers=(j, j + 1))

    def mirror_params(params, i):
        layers = params["decoder"]
        own = {f"{name}{depth - 1 - i}": layers[f"{name}{depth - 1 - i}"]}
        return {**own, "logits": layers["logits"]} if i == 0 else own

    return _Stack(depth, False, False, encode, encoder_params, mirror, mirror_params)


def _stack(model) -> _Stack:
    layers = model.capabilities.greedy_layers
    if layers == "dense" and model.decoder.mirror in ("dense", "tied"):
        return _mlp_stack(model.encoder, model.decoder)
    if layers == "conv":
        return _conv_stack(model.encoder, model.decoder)
    raise ValueError(
        "greedy layer-wise pretraining needs an MLP autoencoder (model.name='mlp' or 'tied') "
        "or a conv one (encoder 'conv', decoder 'transpose' or 'resize'), with a deterministic "
        f"code, whose layers pair up; this {type(model).__name__}'s do not (model.encoder, "
        "model.bottleneck, model.decoder)"
    )


def _phase_penalties(model, cfg: ml_collections.ConfigDict) -> dict:
    """`{"l2": (weight, term)}` if the config has an L2 penalty; other penalties are refused,
    as they are defined on the whole autoencoder's code, not on one phase's."""
    penalties = cfg.regularizers
    others = sorted(set(penalties) - {"l2"})
    if others:
        raise ValueError(
            f"greedy pretraining carries only the l2 penalty into its phases; loss.regularizers "
            f"also has {others}, defined on the whole autoencoder's code: drop them, or train "
            "end to end"
        )
    return regularizers.build(penalties, model)


def make_layer_loss_fn(model, cfg: ml_collections.ConfigDict) -> autoencoding.LossFn:
    """`loss_fn(params, x, rng, train)` of phase `cfg.layer`: metrics "recon", "l2" if the
    config has that penalty, and "loss"."""
    stack = _stack(model)
    layer = cfg.layer
    if not 0 <= layer < stack.depth:
        raise ValueError(f"loss.layer={layer}: the encoder has layers 0 to {stack.depth - 1}")
    corruption = cfg.corruption
    corrupt = corruptions.build(corruption)
    if layer > 0 and corrupt is not None and not corruptions.works_on_any_code(corruption):
        raise ValueError(
            f"corruption {corruption.name!r} assumes inputs in [0, 1], which hidden codes are "
            "not; pretrain the inner layers with 'masking' noise or unclipped gaussian noise "
            "(clip=False), which work on any code"
        )
    penalties = _phase_penalties(model, cfg)
    likelihood = cfg.likelihood if layer == 0 else "gaussian"

    def loss_fn(params, x, rng, train, step=None):  # no schedule: step unused
        h = x.reshape(x.shape[0], -1) if stack.flat else x
        for i in range(layer):
            h = stack.encode(params, i, h)
        h_in = h
        if corrupt is not None and train:
            h_in = corrupt(h, autoencoding.rng_streams(rng)["corruption"])
        out = stack.mirror(params, layer, stack.encode(params, layer, h_in))
        per_unit = likelihoods.reconstruction(out, h, likelihood)
        recon = per_unit.sum() / (x.shape[0] if cfg.reduction == "sum" else per_unit.size)
        metrics = {"recon": recon}
        # The phase's own kernels: encoder layer k's, and its mirror's unless tied to it.
        phase_params = {"encoder": stack.encoder_params(params, layer)}
        if not stack.tied:
            phase_params["decoder"] = stack.mirror_params(params, layer)
        loss = recon
        for name, (weight, term) in penalties.items():
            metrics[name] = term(phase_params, {})
            loss = loss + weight * metrics[name]
        metrics["loss"] = loss
        return loss, metrics

    return loss_fn
