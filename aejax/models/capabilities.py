"""`Capabilities`: what a model can do, declared by the model itself (`model.capabilities`).

Figures, the API, the evaluations and the objectives read this declaration instead of asking
what type a model or its parts are, so a new bottleneck or prior brings its own: an
`Autoencoder` derives its capabilities from what its bottleneck, encoder and decoder declare
(`bottlenecks.Bottleneck`; the encoders' and decoders' class attributes), a `Classifier` and a
`CodePrior` state theirs.
"""

import dataclasses


@dataclasses.dataclass(frozen=True)
class Capabilities:
    """What a model does; each field False or empty unless the model says otherwise."""

    reconstructs: bool = False  # `encode` and `decode`: a decoder gives images back from codes
    classifies: bool = False  # its output is class logits
    normal_prior: bool = False  # its codes follow N(0, I): decoded draws of N(0, I) are samples
    learned_prior: bool = False  # it learned a prior over codes, whose draws it decodes
    drawn_prior: bool = False  # its prior over continuous codes is learned: `prior_draws(n)`
    indexed_codes: bool = False  # codes are codebook indices, which a learned prior can model
    code_2d: bool = False  # its code is a vector of two units: a scatter, a manifold of it
    posterior_density: bool = False  # draws several codes per image with q(z|x) (IWAE, NLL)
    learned_variance: bool = False  # the gaussian likelihood's variance is a parameter
    code_activation: str | None = None  # a deterministic code's activation: its range, by name
    greedy_layers: str | None = None  # "dense", "conv": layers greedy pretraining can pair
    hidden_widths: tuple[int, ...] = ()  # the dense encoder layers `hidden` reads, by width
    dictionary: bool = False  # a sparse autoencoder on vectors: its code is sparse latents
    code_sequences: bool = False  # it models sequences of codes, each given those before it
    potential_likelihood: str | None = None  # the likelihood an HVAE's leapfrog steps climb

    @property
    def samples(self) -> bool:
        """Whether it generates: draws of its prior, N(0, I) or learned, decoded."""
        return self.normal_prior or self.learned_prior or self.drawn_prior
