"""FSQ (Mentzer et al., "Finite Scalar Quantization: VQ-VAE Made Simple"): vqvae's conv encoder
28-14-7 to a 7x7 map of 4-d vectors, each dimension bounded and rounded to 8, 5, 5, 5 levels
(straight-through gradient): an implied codebook of 1000 entries, nothing to learn and no loss
term; the nearest-upsampling conv decoder. Its usage is logged (train/perplexity, train/usage).

aejax train --config fsq --workdir runs/fsq
"""

from aejax import configs


def get_config():
    config = configs.get("vqvae")
    config.model.bottleneck = "fsq"  # in place of vqvae's vq
    config.model.encoder_features = (32, 4)  # 7x7x4: one vector of len(fsq_levels) a position
    config.model.fsq_levels = (8, 5, 5, 5)  # the paper's 1000-entry codebook
    return config
