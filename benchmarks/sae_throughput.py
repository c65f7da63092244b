"""Training throughput of a TopK sparse autoencoder against the matmul-bound rate of its step.

    python -m benchmarks.sae_throughput --dataset fashion_mnist --batch 4096 --epochs 3

The vectors are the 1,024 penultimate activations of `fidelity_features` on the dataset
(`--features` names a trained one; else it is trained once in runs/), the dictionary 16,384
latents, k = 32. Two rates, in vectors/s: the compiled chunk of steps alone
(`benchmarks.measure`), and a whole run through `aejax.fit`, the median of its epochs after the
first (compilation apart), as its metrics.jsonl logs them. The bound is the fp32 matmul rate
measured in the same run over the encoder's product and its kernel gradient as dense products,
2 x 2 x D x L FLOP a vector (the decoder reads only the k rows kept). The step itself takes the
kernel gradient as a scatter of the kept rows (`sae.encode_top_k`), so only the product is
dense: half the bound's work.
"""

import argparse
import statistics
import tempfile
from pathlib import Path

import ml_collections

import aejax
from aejax import configs
from benchmarks import matmul_bound, measure


def config(args) -> ml_collections.ConfigDict:
    return configs.override(
        configs.load("sae_topk"), data__name=args.dataset,
        data__activations=args.features or "fidelity_features", train__batch_size=args.batch,
        train__epochs=args.epochs, train__chunk=args.chunk,
    )  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="fashion_mnist")
    parser.add_argument("--features", default="", help="a trained fidelity_features workdir")
    parser.add_argument("--batch", type=int, default=4096)
    parser.add_argument("--chunk", type=int, default=2, help="steps per compiled call")
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args(argv)
    cfg = config(args)
    gflops = matmul_bound.matmul_gflops()
    step = measure.measure(cfg, naive=False, evaluation=False, epoch=False)
    with tempfile.TemporaryDirectory() as workdir:
        run = aejax.fit(cfg, workdir=Path(workdir) / "sae")
        rows = run.metrics()
    through_fit = statistics.median(r["samples_per_s"] for r in rows[1:])
    d = run.config.model.image_shape[0]
    latents = run.config.model.latents
    bound = gflops * 1e9 / (4 * d * latents)
    print(f"D = {d}, {latents:,} latents, k = {run.config.model.k}, batch {args.batch}")
    print(f"fp32 matmul: {gflops:.0f} GFLOP/s; matmul-bound rate {bound:,.0f} vectors/s")
    print("| path | vectors/s | fraction of the bound |")
    print("| --- | --- | --- |")
    for name, rate in (("compiled step", step["samples_per_s"]), ("aejax.fit", through_fit)):
        print(f"| {name} | {rate:,.0f} | {rate / bound:.0%} |")
    print(f"test FVU after {len(rows)} epochs: {rows[-1]['test/fvu']:.3f}")


if __name__ == "__main__":
    main()
