"""aejax's mlp, vae and conv models as a plain PyTorch training loop, for side-by-side timing.

    python -m benchmarks.peers.torch_loop conv --epochs 2 --seed 0 --out row.json

What a competent PyTorch user writes: the data as tensors in memory (NCHW), a `torch.randperm`
shuffle each epoch with the incomplete last batch dropped (as aejax drops it), `model.train()`,
`zero_grad(set_to_none=True)`, eager mode, PyTorch's default thread count. The models are
aejax's layer for layer, with its initialisers and zero biases; each decoder ends in logits and
the loss is BCE on logits (`binary_cross_entropy_with_logits`), as aejax computes it. Adam has
optax's betas and eps (1e-8, also PyTorch's). Not part of CI: `pip install -e ".[peers]"`.
"""

import math
import time

import torch
import torch.nn.functional as F
from torch import nn

from benchmarks.peers import common

# jax.nn.initializers.truncated_normal draws in [-2, 2] and divides by this, the standard
# deviation of a unit normal truncated there, so the kernels' variance is 1 / fan_in.
TRUNCATED_NORMAL_STD = 0.87962566103423978


def lecun_normal_(weight: torch.Tensor) -> None:
    """flax's default kernel init, variance_scaling(1, "fan_in", "truncated_normal")."""
    std = math.sqrt(1.0 / weight[0].numel()) / TRUNCATED_NORMAL_STD  # fan_in = in * kh * kw
    nn.init.trunc_normal_(weight, std=std, a=-2 * std, b=2 * std)


def initialise(model: nn.Module, kernel_init) -> nn.Module:
    """`kernel_init` on every weight, zero biases (flax's and Keras's defaults, not PyTorch's)."""
    for layer in model.modules():
        if isinstance(layer, nn.Linear | nn.Conv2d):
            kernel_init(layer.weight)
            nn.init.zeros_(layer.bias)
    return model


def mlp() -> nn.Module:
    """784-32-784, ReLU code, logits out; Keras's glorot_uniform kernels, as the mlp config."""
    model = nn.Sequential(
        nn.Flatten(),
        nn.Linear(784, 32),
        nn.ReLU(),
        nn.Linear(32, 784),
        nn.Unflatten(1, (1, 28, 28)),
    )
    return initialise(model, nn.init.xavier_uniform_)


class VAE(nn.Module):
    """784-500-500-20 ELU encoder with mean and log-variance heads, a reparameterised sample,
    decoder 20-500-500-784 ELU to Bernoulli logits."""

    def __init__(self):
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Flatten(), nn.Linear(784, 500), nn.ELU(), nn.Linear(500, 500), nn.ELU()
        )
        self.mu = nn.Linear(500, 20)
        self.logvar = nn.Linear(500, 20)
        self.decoder = nn.Sequential(
            nn.Linear(20, 500),
            nn.ELU(),
            nn.Linear(500, 500),
            nn.ELU(),
            nn.Linear(500, 784),
            nn.Unflatten(1, (1, 28, 28)),
        )

    def forward(self, x):
        h = self.encoder(x)
        mu, logvar = self.mu(h), self.logvar(h)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(
            mu
        )  # sampled in evaluation too, as aejax
        return self.decoder(z), mu, logvar


def conv() -> nn.Module:
    """conv16-pool-conv8-pool-conv8-pool (28-14-7-4: ceil_mode pools 7 to 4 as 'SAME' does),
    then conv8-up-conv8-up-conv16 (unpadded: 16 to 14)-up and a 3x3 convolution to logits."""
    model = nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2, ceil_mode=True),
        nn.Conv2d(16, 8, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2, ceil_mode=True),
        nn.Conv2d(8, 8, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2, ceil_mode=True),
        nn.Conv2d(8, 8, 3, padding=1),
        nn.ReLU(),
        nn.Upsample(scale_factor=2, mode="nearest"),
        nn.Conv2d(8, 8, 3, padding=1),
        nn.ReLU(),
        nn.Upsample(scale_factor=2, mode="nearest"),
        nn.Conv2d(8, 16, 3, padding=0),
        nn.ReLU(),
        nn.Upsample(scale_factor=2, mode="nearest"),
        nn.Conv2d(16, 1, 3, padding=1),
    )
    return initialise(model, lecun_normal_)


def bce_per_pixel(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(model(x), x)


def negative_elbo(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """BCE summed per image plus the KL to N(0, I), averaged over the batch: nats per image."""
    logits, mu, logvar = model(x)
    recon = F.binary_cross_entropy_with_logits(logits, x, reduction="sum") / x.shape[0]
    kl = 0.5 * torch.sum(torch.exp(logvar) + mu.square() - 1.0 - logvar, dim=1)
    return recon + kl.mean()


MODELS = {
    "mlp": (mlp, bce_per_pixel),
    "vae": (lambda: initialise(VAE(), lecun_normal_), negative_elbo),
    "conv": (conv, bce_per_pixel),
}


def train_epoch(model, loss_fn, optimizer, x_NxCxHxW: torch.Tensor, batch_size: int) -> float:
    """One shuffled pass over whole batches; the mean training loss."""
    model.train()
    steps = x_NxCxHxW.shape[0] // batch_size
    order = torch.randperm(x_NxCxHxW.shape[0])
    total = torch.zeros(())
    for step in range(steps):
        batch = x_NxCxHxW[order[step * batch_size : (step + 1) * batch_size]]
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model, batch)
        loss.backward()
        optimizer.step()
        total += loss.detach()
    return total.item() / steps


@torch.no_grad()
def evaluate(model, loss_fn, x_NxCxHxW: torch.Tensor) -> float:
    """The loss over the whole set, in batches of aejax's evaluation size."""
    model.eval()
    n, total = x_NxCxHxW.shape[0], 0.0
    for begin in range(0, n, common.EVAL_BATCH):
        batch = x_NxCxHxW[begin : begin + common.EVAL_BATCH]
        total += loss_fn(model, batch).item() * batch.shape[0]
    return total / n


def param_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def main(argv: list[str] | None = None) -> None:
    args = common.parse_args(__doc__.splitlines()[0], argv)
    torch.manual_seed(args.seed)
    build, loss_fn = MODELS[args.model]
    model = build()
    params = common.check_params("torch", args.model, param_count(model))
    batch_size, lr = common.settings(args.model)
    optimizer = torch.optim.Adam(
        model.parameters(),
        lr=lr,
        betas=(common.ADAM["b1"], common.ADAM["b2"]),
        eps=common.ADAM["eps"],
    )
    x_train, x_test = (
        torch.from_numpy(x).permute(0, 3, 1, 2).contiguous() for x in common.splits()
    )
    samples = x_train.shape[0] // batch_size * batch_size
    seconds = []
    for epoch in range(1, args.epochs + 1):
        start = time.perf_counter()
        train_loss = train_epoch(model, loss_fn, optimizer, x_train, batch_size)
        seconds.append(time.perf_counter() - start)
        print(common.epoch_line(epoch, args.epochs, train_loss, seconds[-1], samples), flush=True)
    result = common.row(
        "torch",
        args,
        epoch_seconds=seconds,
        samples_per_epoch=samples,
        test_loss=evaluate(model, loss_fn, x_test),
        params=params,
        versions={"torch": torch.__version__},
        threads=torch.get_num_threads(),
    )
    common.write_row(args.out, result)


if __name__ == "__main__":
    main()
