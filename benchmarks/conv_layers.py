"""What XLA:CPU makes of each 3x3 convolution of the conv AEs, written three ways.

    python -m benchmarks.conv_layers

For every convolution layer of the `conv` and `conv_denoising` configs at batch 200, times the
forward pass, the gradient to the kernel and the gradient to the input (best of 5 runs of 20
calls, each compiled alone) for three formulations of the same convolution:
- `lax`: `lax.conv_general_dilated`, what `nn.Conv` runs;
- `patches`: the 3x3 neighbourhoods stacked on the channel axis, one matmul with K = 9 C_in;
- `shifted`: one matmul to 9 C_out channels, then the nine shifted slices added.
Alone, shifted taps win for the logits layer (and, on an earlier machine, patches for the
first); inside whole training steps that choice trained slower than XLA's convolution
everywhere (docs/benchmarks.md), so aejax keeps XLA's convolution. The layers after a doubling
are timed here as they read the doubled map; the decoders compute them on the map before
doubling (`aejax.models.conv.conv_of_upsampled`), which no formulation below does.
The first layer needs no gradient to its input (the image), so its column is left out.
"""

import functools

import jax
import jax.numpy as jnp

from benchmarks import matmul_bound

BATCH = 200
best_seconds = functools.partial(matmul_bound.best_seconds, calls=20)
# (config, [(side, C_in, C_out, padding)]) as built by aejax.models.conv for the shipped configs.
LAYERS = [
    (
        "conv",
        [
            (28, 1, 16, "SAME"),
            (14, 16, 8, "SAME"),
            (7, 8, 8, "SAME"),
            (4, 8, 8, "SAME"),
            (8, 8, 8, "SAME"),
            (16, 8, 16, "VALID"),
            (28, 16, 1, "SAME"),
        ],
    ),
    (
        "conv_denoising",
        [
            (28, 1, 32, "SAME"),
            (14, 32, 32, "SAME"),
            (7, 32, 16, "SAME"),
            (4, 16, 16, "SAME"),
            (8, 16, 32, "SAME"),
            (16, 32, 32, "VALID"),
            (28, 32, 1, "SAME"),
        ],
    ),
]


def conv3x3_lax(x_BxHxWxC: jax.Array, kernel_3x3xCxF: jax.Array, padding: str) -> jax.Array:
    """XLA's own convolution: what `nn.Conv` runs."""
    dims = ("NHWC", "HWIO", "NHWC")
    return jax.lax.conv_general_dilated(
        x_BxHxWxC, kernel_3x3xCxF, (1, 1), padding, dimension_numbers=dims
    )


def conv3x3_patches(x_BxHxWxC: jax.Array, kernel_3x3xCxF: jax.Array, padding: str) -> jax.Array:
    """The 3x3 neighbourhoods stacked on the channel axis, then one matmul with K = 9C."""
    if padding == "SAME":
        x_BxHxWxC = jnp.pad(x_BxHxWxC, ((0, 0), (1, 1), (1, 1), (0, 0)))
    h, w = x_BxHxWxC.shape[1] - 2, x_BxHxWxC.shape[2] - 2
    shifts = [x_BxHxWxC[:, i : i + h, j : j + w, :] for i in range(3) for j in range(3)]
    return jnp.concatenate(shifts, axis=-1) @ kernel_3x3xCxF.reshape(-1, kernel_3x3xCxF.shape[-1])


def conv3x3_shifted(x_BxHxWxC: jax.Array, kernel_3x3xCxF: jax.Array, padding: str) -> jax.Array:
    """One matmul to every tap's output (N = 9F), then the nine taps' slices added, shifted.

    Output pixel (p, q) is the sum over taps (i, j) of x[p+i, q+j] @ W[i, j] in the padded frame.
    """
    b, h, w, c = x_BxHxWxC.shape
    f = kernel_3x3xCxF.shape[-1]
    taps = (x_BxHxWxC @ kernel_3x3xCxF.transpose(2, 0, 1, 3).reshape(c, 9 * f)).reshape(
        b, h, w, 3, 3, f
    )
    if padding == "SAME":
        taps = jnp.pad(taps, ((0, 0), (1, 1), (1, 1), (0, 0), (0, 0), (0, 0)))
    h, w = taps.shape[1] - 2, taps.shape[2] - 2
    return sum(taps[:, i : i + h, j : j + w, i, j] for i in range(3) for j in range(3))


FORMS = {"lax": conv3x3_lax, "patches": conv3x3_patches, "shifted": conv3x3_shifted}


def time_layer(fn, x, kernel, padding, input_grad: bool) -> list[float]:
    """Seconds of the forward pass, the kernel gradient and (if asked) the input gradient."""
    forward = functools.partial(fn, padding=padding)
    cotangent = conv3x3_lax(x, kernel, padding)  # an argument, not a constant XLA would fold

    def grad(wrt):
        return jax.grad(lambda x, kernel, dy: jnp.vdot(forward(x, kernel), dy), wrt)

    times = [best_seconds(forward, x, kernel), best_seconds(grad(1), x, kernel, cotangent)]
    return times + [best_seconds(grad(0), x, kernel, cotangent) if input_grad else 0.0]


def main() -> None:
    print("| config | layer | form | forward ms | kernel grad ms | input grad ms | GFLOP/s |")
    print("|---|---|---|---|---|---|---|")
    for name, layers in LAYERS:
        totals = dict.fromkeys(FORMS, 0.0)
        best_total = 0.0
        for i, (side, c_in, c_out, padding) in enumerate(layers):
            x = jax.random.uniform(jax.random.key(0), (BATCH, side, side, c_in))
            kernel = jax.random.normal(jax.random.key(1), (3, 3, c_in, c_out)) * 0.1
            passes = 2 if i == 0 else 3  # the image needs no gradient
            flop = passes * 2 * BATCH * (side - 2 * (padding == "VALID")) ** 2 * 9 * c_in * c_out
            seconds_by_form = {}
            for form, fn in FORMS.items():
                times = time_layer(fn, x, kernel, padding, input_grad=i > 0)
                seconds_by_form[form] = sum(times)
                totals[form] += sum(times)
                input_grad = f"{times[2] * 1e3:.2f}" if i > 0 else ""
                print(
                    f"| {name} | {side}x{side} {c_in}->{c_out} | {form} | {times[0] * 1e3:.2f} | "
                    f"{times[1] * 1e3:.2f} | {input_grad} | {flop / sum(times) / 1e9:.1f} |"
                )
            best_total += min(seconds_by_form.values())
        for form, seconds in totals.items():
            print(f"| {name} | all layers | {form} | | | | {BATCH / seconds:,.0f} samples/s |")
        print(
            f"| {name} | all layers | best form per layer | | | | {BATCH / best_total:,.0f} samples/s |"
        )


if __name__ == "__main__":
    main()
