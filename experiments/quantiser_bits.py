"""Quantisers at equal code bits: VQ, VQ kept by EMA with dead-code restarts, residual VQ, FSQ and
LFQ, each giving 49 vectors an image (vqvae's 7x7 grid) of b bits, their test reconstruction and
how much of their codebook the test set uses (docs/composable.md).

    python experiments/quantiser_bits.py --dataset mnist --epochs 3   # MNIST in $AEJAX_IDX_DIR

b bits a vector are 2^b entries for VQ, two levels of 2^(b/2) for residual VQ, b sign bits for
LFQ, and for FSQ the level counts "Finite Scalar Quantization: VQ-VAE Made Simple" (Mentzer et
al.) recommends for about 2^b codes. Each point is an ordinary run of the shipped config
(`vqvae`, `vqvae_ema`, `rvq`, `fsq`, `lfq`) with those sizes, in `--workdir/DATASET/NAME-b`,
resumed if present, so a rerun trains only what it lacks. Writes the table, its json and
`quantiser_bits.png` (reconstruction and usage against bits) there.
"""

import argparse
import json
import math
from pathlib import Path

from matplotlib.figure import Figure

import aejax

BITS = (6, 10, 12)
FSQ_LEVELS = {6: (8, 8), 8: (8, 6, 5), 10: (8, 5, 5, 5), 12: (7, 5, 5, 5, 5)}  # the FSQ paper's
QUANTISERS = ("vq", "vq_ema_restarts", "rvq", "fsq", "lfq")


def overrides(quantiser: str, bits: int) -> tuple[str, dict]:
    """The shipped config and the overrides that give `quantiser` vectors of `bits` bits."""
    if quantiser == "vq":
        return "vqvae", {"model__num_codes": 2**bits}
    if quantiser == "vq_ema_restarts":
        return "vqvae_ema", {"model__num_codes": 2**bits, "model__dead_code_steps": 20}
    if quantiser == "rvq":
        return "rvq", {"model__num_codes": 2 ** (bits // 2), "model__rvq_levels": 2}
    if quantiser == "fsq":
        levels = FSQ_LEVELS[bits]
        return "fsq", {"model__fsq_levels": levels, "model__encoder_features": (32, len(levels))}
    return "lfq", {"model__code_dim": bits, "model__encoder_features": (32, bits)}


def point(quantiser: str, bits: int, args: argparse.Namespace) -> dict:
    """The last epoch's test reconstruction and codebook use of one trained point."""
    name, fields = overrides(quantiser, bits)
    run = aejax.fit(
        name, workdir=args.workdir / args.dataset / f"{quantiser}-{bits}",
        data__name=args.dataset, train__epochs=args.epochs, **fields,
    )  # fmt: skip
    last = run.metrics()[-1]
    levels = 2 if quantiser == "rvq" else 1
    used = [last["test/codebook_used" + (str(i + 1) if i else "")] for i in range(levels)]
    exact = math.log2(math.prod(FSQ_LEVELS[bits])) if quantiser == "fsq" else bits
    return {
        "quantiser": quantiser, "bits": bits, "exact_bits": exact, "recon": last["test/recon"],
        "used": sum(used) / levels, "perplexity": last.get("train/perplexity", float("nan")),
        "seconds": sum(row["epoch_seconds"] for row in run.metrics()),
    }  # fmt: skip


def figure(points: list[dict], path: Path) -> None:
    """Test reconstruction and codebook use against bits a vector, one line per quantiser."""
    fig = Figure(figsize=(9, 3.5))
    recon_ax, used_ax = fig.subplots(1, 2)
    for quantiser in dict.fromkeys(p["quantiser"] for p in points):
        mine = [p for p in points if p["quantiser"] == quantiser]
        bits, recon, used = zip(*sorted((p["exact_bits"], p["recon"], p["used"]) for p in mine))
        recon_ax.plot(bits, recon, marker="o", label=quantiser)
        used_ax.plot(bits, used, marker="o", label=quantiser)
    recon_ax.set(xlabel="bits a vector (49 vectors an image)", ylabel="test reconstruction (nats)")
    used_ax.set(xlabel="bits a vector", ylabel="codebook used by the test set", ylim=(0, 1.05))
    used_ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="mnist5k")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument(
        "--bits", type=int, nargs="+", default=list(BITS), choices=sorted(FSQ_LEVELS)
    )
    parser.add_argument("--quantisers", nargs="+", default=list(QUANTISERS), choices=QUANTISERS)
    parser.add_argument("--workdir", type=Path, default=Path("runs/quantiser_bits"))
    args = parser.parse_args(argv)
    points = [point(q, b, args) for b in args.bits for q in args.quantisers]
    print(
        "| quantiser | bits a vector | test recon (nats) | codebook used (test) | "
        "perplexity (train) | training |\n| --- | --- | --- | --- | --- | --- |"
    )
    for p in points:
        print(
            f"| {p['quantiser']} | {p['exact_bits']:.2f} | {p['recon']:.1f} | {p['used']:.3f} | "
            f"{p['perplexity']:.1f} | {p['seconds']:.0f} s |"
        )
    out = args.workdir / args.dataset
    (out / "quantiser_bits.json").write_text(json.dumps(points, indent=1))
    figure(points, out / "quantiser_bits.png")
    print(f"wrote {out / 'quantiser_bits.png'}")
    return points


if __name__ == "__main__":
    main()
