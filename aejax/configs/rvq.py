"""Residual VQ (Zeghidour et al., "SoundStream: An End-to-End Neural Audio Codec"): vqvae's
conv encoder to a 7x7 map of 16-d vectors, each quantised by 4 VQ codebooks of 64 entries in
sequence, each on the residual the ones before it left; the code is their sum (straight-through
gradient). Commitment (weight 1, as vqvae's) and codebook terms summed over levels; each level's
perplexity logged (train/perplexity, train/perplexity2, ...).

aejax train --config rvq --workdir runs/rvq
"""

from aejax import configs


def get_config():
    config = configs.get("vqvae")
    config.model.bottleneck = "rvq"  # in place of vqvae's vq
    config.model.rvq_levels = 4  # quantisers in sequence, each num_codes x code_dim
    return config
