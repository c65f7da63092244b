"""LFQ (Yu et al., "Language Model Beats Diffusion: Tokenizer is Key to Visual Generation"):
vqvae's conv encoder to a 7x7 map of 8-d vectors, each dimension quantised to its sign
(straight-through gradient): an implied codebook of 2^8 = 256 entries a position, no codebook
to learn. Commitment (weight 0.25) and the entropy penalty: each code's entropy (weight 0.1)
and the batch's distance from using the codebook uniformly (weight 1), both of the soft
assignment at temperature 0.1; usage logged (train/perplexity, train/usage).

aejax train --config lfq --workdir runs/lfq
"""

from aejax import configs


def get_config():
    config = configs.get("vqvae")
    config.model.bottleneck = "lfq"  # in place of vqvae's vq
    config.model.encoder_features = (32, 8)  # 7x7x8: one vector of code_dim bits a position
    config.model.code_dim = 8  # bits: 256 entries
    config.loss.commitment_weight = 0.25  # the published LFQ setting's, in place of vqvae's 1
    return config
