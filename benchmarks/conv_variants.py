"""The conv AE's training step written several ways, timed in turns.

    python -m benchmarks.conv_variants --rounds 2

A plain-JAX copy of the `conv` config's step (encoder 16-8-8 with 2x2 max pooling, nearest
decoder 8-8-16 with its VALID trim, logits, BCE, Adam; batch 200 of uniform noise, which times
the same as images), so that one layer's form can change while the rest stays. Each round
compiles every variant and times it (best of 5 runs of 30 steps), the variants taking turns:
- `unfolded`: each decoder convolution reads the explicitly doubled map (aejax before folding);
- `folded`: convolutions of doubled maps on the undoubled map (`conv_of_upsampled`, shipped);
- `nchw`: `unfolded` with every map channels-first;
- `logits_padded`: `unfolded` with the logits layer's single output channel padded to 8;
- `pool_first`: `folded`, each encoder layer pooling before its bias and ReLU (the same values);
- `first_max`: `folded`, the pooling's gradient sent to the first maximum of a block only;
- `space_to_depth`: `folded`, the first layer a convolution of the image's 2x2 blocks to the
  four phases of its output, whose maximum is the pooling.
"""

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from aejax import compiled
from aejax.models import conv as aejax_conv

BATCH = 200
ENCODER = [(1, 16), (16, 8), (8, 8)]
DECODER = [(8, 8, "SAME"), (8, 8, "SAME"), (8, 16, "VALID")]
VARIANTS = (
    "unfolded", "folded", "nchw", "logits_padded", "pool_first", "first_max", "space_to_depth"
)  # fmt: skip


def conv3x3(x, kernel, padding, layout="NHWC"):
    return jax.lax.conv_general_dilated(
        x, kernel, (1, 1), padding, dimension_numbers=(layout, "HWIO", layout)
    )


def to_nchw(f):
    """`f` of an NHWC map, applied to an NCHW one."""
    return lambda x: f(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)


@jax.custom_vjp
def pool_to_first_max(x):
    return aejax_conv.max_pool_2x2(x)


def _blocks(x):
    b, h, w, c = x.shape
    return x.reshape(b, h // 2, 2, w // 2, 2, c).transpose(0, 1, 3, 2, 4, 5).reshape(
        b, h // 2, w // 2, 4, c
    )


def _pool_forward(x):
    return _blocks(x).max(axis=3), (jnp.argmax(_blocks(x), axis=3), x.shape)


def _pool_backward(residuals, g):
    first, (b, h, w, c) = residuals
    routed = (first[:, :, :, None] == jnp.arange(4)[:, None]) * g[:, :, :, None]
    routed = routed.reshape(b, h // 2, w // 2, 2, 2, c).transpose(0, 1, 3, 2, 4, 5)
    return (routed.reshape(b, h, w, c),)


pool_to_first_max.defvjp(_pool_forward, _pool_backward)


def space_to_depth_conv_pool(x, kernel, bias):
    """pool(relu(conv3x3_same(x) + bias)) for even sides, from the image's 2x2 blocks."""
    reads = np.zeros((2, 3, 2, 3), np.float32)  # [phase, block tap, parity, tap]
    for phase in range(2):
        for d in range(3):
            reads[phase, (phase + d - 1) // 2 + 1, (phase + d - 1) % 2, d] = 1
    b, h, w, c = x.shape
    f = kernel.shape[-1]
    blocks = _blocks(x).reshape(b, h // 2, w // 2, 4 * c)
    folded = jnp.einsum("aopd,bqse,decf->oqpscabf", reads, reads, kernel)
    y = conv3x3(blocks, folded.reshape(3, 3, 4 * c, 4 * f), "SAME")
    return jax.nn.relu(y.reshape(b, h // 2, w // 2, 4, f).max(axis=3) + bias)


def forward(variant, params, x):
    layout = "NCHW" if variant == "nchw" else "NHWC"
    pool, double = aejax_conv.max_pool_2x2, aejax_conv.upsample_2x
    if layout == "NCHW":
        pool, double = to_nchw(pool), to_nchw(double)
    bias = (lambda b: b[:, None, None]) if layout == "NCHW" else (lambda b: b)
    h = x
    for i, (kernel, b) in enumerate(params[:3]):
        if variant == "space_to_depth" and i == 0:
            h = space_to_depth_conv_pool(h, kernel, b)
        elif variant == "pool_first":
            h = jax.nn.relu(pool(conv3x3(h, kernel, "SAME")) + b)
        elif variant == "first_max" and h.shape[1] % 2 == 0:
            h = pool_to_first_max(jax.nn.relu(conv3x3(h, kernel, "SAME") + b))
        else:
            h = pool(jax.nn.relu(conv3x3(h, kernel, "SAME", layout) + bias(b)))
    folded = variant not in ("unfolded", "nchw", "logits_padded")
    for i, ((kernel, b), (*_, padding)) in enumerate(zip(params[3:6], DECODER)):
        if folded and i > 0:
            h = jax.nn.relu(aejax_conv.conv_of_upsampled(h, kernel, (1, 1), padding) + b)
        else:
            h = jax.nn.relu(conv3x3(h, kernel, padding, layout) + bias(b))
            h = h if folded else double(h)
    kernel, b = params[6]
    if folded:
        return aejax_conv.conv_of_upsampled(h, kernel, (1, 1), ((1, 1), (1, 1))) + b
    if variant == "logits_padded":
        kernel = jnp.concatenate([kernel, jnp.zeros((3, 3, 16, 7))], axis=-1)
        return conv3x3(h, kernel, "SAME")[..., :1] + b
    return conv3x3(h, kernel, "SAME", layout) + bias(b)


def initial(variant: str):
    """The parameters (every variant's alike) and a batch in the variant's layout."""
    keys = jax.random.split(jax.random.key(0), 8)
    shapes = ENCODER + [(i, o) for i, o, _ in DECODER] + [(16, 1)]
    params = [
        (jax.random.normal(k, (3, 3, i, o)) / (9 * i) ** 0.5, jnp.full(o, 0.01))
        for k, (i, o) in zip(keys, shapes)
    ]
    x = jax.random.uniform(keys[-1], (BATCH, 28, 28, 1))
    return params, x.transpose(0, 3, 1, 2) if variant == "nchw" else x


def check_same_function(variants) -> None:
    """Every variant's logits are the unfolded step's, so the timings compare one function."""
    params, x = initial("unfolded")
    want = forward("unfolded", params, x)
    for variant in variants:
        got = forward(variant, *initial(variant))
        got = got.transpose(0, 2, 3, 1) if variant == "nchw" else got
        np.testing.assert_allclose(got, want, atol=1e-4, err_msg=variant)


def step_seconds(variant: str, runs: int = 5, steps: int = 30) -> float:
    """Seconds per training step of `variant`, the best of `runs` runs of `steps` steps."""
    params, x = initial(variant)
    optimiser = optax.adam(1e-3)

    def loss(params, x):
        logits = forward(variant, params, x)
        return jnp.mean(jax.nn.relu(logits) - x * logits + jnp.log1p(jnp.exp(-jnp.abs(logits))))

    @compiled.jit(donate_argnums=0)
    def step(state, x):
        params, opt_state = state
        value, grads = jax.value_and_grad(loss)(params, x)
        updates, opt_state = optimiser.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), value

    state = (params, optimiser.init(params))
    for _ in range(3):
        state, _ = step(state, x)
    jax.block_until_ready(state)
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        for _ in range(steps):
            state, _ = step(state, x)
        jax.block_until_ready(state)
        best = min(best, (time.perf_counter() - start) / steps)
    return best


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    args = parser.parse_args(argv)
    check_same_function(args.variants)
    results = {variant: [] for variant in args.variants}
    for round_ in range(args.rounds):
        order = args.variants if round_ % 2 == 0 else args.variants[::-1]
        for variant in order:
            results[variant].append(BATCH / step_seconds(variant))
    print("| variant | samples/s, each round |\n|---|---|")
    for variant, rates in results.items():
        print(f"| {variant} | {' / '.join(f'{rate:,.0f}' for rate in rates)} |")


if __name__ == "__main__":
    main()
