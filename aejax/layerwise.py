"""The objective of one phase of greedy layer-wise pretraining of an MLP autoencoder.

Phase k feeds the input through encoder layers 0..k-1, corrupts that code if the loss asks
(denoising), encodes it with encoder layer k and decodes it with its mirror, decoder layer
D-1-k; the target is the clean code. Phase 0 reconstructs pixels with the config's likelihood;
later phases reconstruct hidden codes with squared error. Each layer is applied through the
model's own `MLP` module on its slice of the one parameter tree, so the phases train exactly
the layers the whole autoencoder uses.
"""

import ml_collections

from aejax import corruptions, losses, models


def trainable_pair(depth: int, layer: int) -> tuple[str, str]:
    """Parameter paths of encoder layer `layer` and its mirror decoder layer, for `opt.trainable`."""
    return f"encoder/mlp/dense{layer}", f"decoder/mlp/dense{depth - 1 - layer}"


def _dense(layer_params: dict, h_BxD, activation: str):
    width = layer_params["kernel"].shape[1]
    layer = models.MLP((width,), final_activation=activation)
    return layer.apply({"params": {"dense0": layer_params}}, h_BxD)


def make_layer_loss_fn(model, cfg: ml_collections.ConfigDict) -> losses.LossFn:
    """`loss_fn(params, x, rng, train)` of phase `cfg.layer`: metrics "recon" and "loss"."""
    encoder, decoder = getattr(model, "encoder", None), getattr(model, "decoder", None)
    if not (isinstance(encoder, models.MLPEncoder) and isinstance(decoder, models.MLPDecoder)):
        raise ValueError(  # noqa: TRY004 (a config chose the model: a config error)
            "greedy layer-wise pretraining needs an MLP autoencoder (model.name='mlp'), whose "
            f"layers pair up; got {type(model).__name__}"
        )
    depth, layer = len(encoder.widths), cfg.layer
    if not 0 <= layer < depth:
        raise ValueError(f"loss.layer={layer}: the encoder has layers 0 to {depth - 1}")
    corruption = cfg.get("corruption")
    corrupt = corruptions.build(corruption) if corruption is not None else None
    if layer > 0 and corrupt is not None and not corruptions.works_on_any_code(corruption):
        raise ValueError(
            f"corruption {corruption.name!r} assumes inputs in [0, 1], which hidden codes are "
            "not; pretrain the inner layers with 'masking' noise or unclipped gaussian noise "
            "(clip=False), which work on any code"
        )

    def encoder_activation(i):
        return encoder.activation if i < depth - 1 else encoder.code_activation

    # Decoder layer D-1-k outputs logits for k = 0 and a hidden code (with activation) after.
    decoder_activation = "linear" if layer == 0 else decoder.activation
    likelihood = cfg.likelihood if layer == 0 else "gaussian"

    def loss_fn(params, x, rng, train, step=None):  # no schedule: step unused
        enc, dec = params["encoder"]["mlp"], params["decoder"]["mlp"]
        h_BxD = x.reshape(x.shape[0], -1)
        for i in range(layer):
            h_BxD = _dense(enc[f"dense{i}"], h_BxD, encoder_activation(i))
        h_in = h_BxD
        if corrupt is not None and train:
            h_in = corrupt(h_BxD, losses.rng_streams(rng)["corruption"])
        code = _dense(enc[f"dense{layer}"], h_in, encoder_activation(layer))
        out = _dense(dec[f"dense{depth - 1 - layer}"], code, decoder_activation)
        per_unit = losses.reconstruction(out, h_BxD, likelihood)
        recon = per_unit.sum() / (x.shape[0] if cfg.reduction == "sum" else per_unit.size)
        return recon, {"recon": recon, "loss": recon}

    return loss_fn
