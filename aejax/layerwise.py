"""The objective of one phase of greedy layer-wise pretraining of an MLP autoencoder.

Phase k feeds the input through encoder layers 0..k-1, corrupts that code if the loss asks
(denoising), encodes it with encoder layer k and decodes it with its mirror, decoder layer
D-1-k; the target is the clean code. Phase 0 reconstructs pixels with the config's likelihood;
later phases reconstruct hidden codes with squared error. Each layer is applied through the
model's own `MLP` module on its slice of the one parameter tree, so the phases train exactly
the layers the whole autoencoder uses. A tied autoencoder's mirror is encoder layer k's kernel
transposed with the decoder's bias k: one parameter, used twice within the phase as in the
whole model. An L2 penalty in the config carries into every phase, on the phase's kernels
(a tied kernel once), as the seed's phases each add their own layers' penalty.
"""

import ml_collections

from aejax import corruptions, losses, models, regularizers


def trainable_pair(model_cfg: ml_collections.ConfigDict, layer: int) -> tuple[str, str]:
    """Parameter paths of encoder layer `layer` and its mirror decoder layer, for
    `opt.trainable`: its dense layer, or for a tied model (`model.name="tied"`) its bias."""
    if model_cfg.name == "tied":
        return f"encoder/mlp/dense{layer}", f"decoder/bias{layer}"
    mirror = len(model_cfg.encoder_widths) - 1 - layer
    return f"encoder/mlp/dense{layer}", f"decoder/mlp/dense{mirror}"


def _dense(layer_params: dict, h_BxD, activation: str):
    width = layer_params["kernel"].shape[1]
    layer = models.MLP((width,), final_activation=activation)
    return layer.apply({"params": {"dense0": layer_params}}, h_BxD)


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


def make_layer_loss_fn(model, cfg: ml_collections.ConfigDict) -> losses.LossFn:
    """`loss_fn(params, x, rng, train)` of phase `cfg.layer`: metrics "recon", "l2" if the
    config has that penalty, and "loss"."""
    encoder, decoder = getattr(model, "encoder", None), getattr(model, "decoder", None)
    tied = isinstance(decoder, models.TiedMLPDecoder)
    pairs_up = tied or isinstance(decoder, models.MLPDecoder)
    if not (isinstance(encoder, models.MLPEncoder) and pairs_up):
        raise ValueError(  # noqa: TRY004 (a config chose the model: a config error)
            "greedy layer-wise pretraining needs an MLP autoencoder (model.name='mlp' or "
            f"'tied'), whose layers pair up; got {type(model).__name__}"
        )
    depth, layer = len(encoder.widths), cfg.layer
    if not 0 <= layer < depth:
        raise ValueError(f"loss.layer={layer}: the encoder has layers 0 to {depth - 1}")
    corruption = cfg.corruption
    corrupt = corruptions.build(corruption)
    if layer > 0 and corrupt is not None and not corruptions.works_on_any_code(corruption):
        raise ValueError(
            f"corruption {corruption.name!r} assumes inputs in [0, 1], which hidden codes are "
            "not; pretrain the inner layers with 'masking' noise or unclipped gaussian noise "
            "(clip=False), which work on any code"
        )
    penalties = _phase_penalties(model, cfg)

    def encoder_activation(i):
        return encoder.activation if i < depth - 1 else encoder.code_activation

    # Decoder layer D-1-k outputs logits for k = 0 and a hidden code (with activation) after.
    decoder_activation = "linear" if layer == 0 else decoder.activation
    likelihood = cfg.likelihood if layer == 0 else "gaussian"

    def mirror(params):
        """The decoder layer of this phase as dense parameters: a tied one's kernel is the
        encoder's, transposed (the very parameter, so its gradient sums both uses)."""
        if tied:
            kernel = params["encoder"]["mlp"][f"dense{layer}"]["kernel"]
            return {"kernel": kernel.T, "bias": params["decoder"][f"bias{layer}"]}
        return params["decoder"]["mlp"][f"dense{depth - 1 - layer}"]

    def loss_fn(params, x, rng, train, step=None):  # no schedule: step unused
        enc = params["encoder"]["mlp"]
        h_BxD = x.reshape(x.shape[0], -1)
        for i in range(layer):
            h_BxD = _dense(enc[f"dense{i}"], h_BxD, encoder_activation(i))
        h_in = h_BxD
        if corrupt is not None and train:
            h_in = corrupt(h_BxD, losses.rng_streams(rng)["corruption"])
        code = _dense(enc[f"dense{layer}"], h_in, encoder_activation(layer))
        out = _dense(mirror(params), code, decoder_activation)
        per_unit = losses.reconstruction(out, h_BxD, likelihood)
        recon = per_unit.sum() / (x.shape[0] if cfg.reduction == "sum" else per_unit.size)
        metrics = {"recon": recon}
        # The phase's own kernels: encoder layer k's, and its mirror's unless tied to it.
        phase_params = {"encoder": enc[f"dense{layer}"]}
        if not tied:
            phase_params["decoder"] = mirror(params)
        loss = recon
        for name, (weight, term) in penalties.items():
            metrics[name] = term(phase_params, {})
            loss = loss + weight * metrics[name]
        metrics["loss"] = loss
        return loss, metrics

    return loss_fn
