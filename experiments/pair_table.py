"""Trains every encoder x bottleneck x decoder pair for a short fixed budget and prints
docs/composable.md's table of pairs: each one's test loss, or why it is refused.

    python experiments/pair_table.py --dataset mnist5k --epochs 2

Each pair is an ordinary `aejax.fit` run in `--workdir/DATASET/ENCODER-BOTTLENECK-DECODER`
(resumed if present, so a rerun trains only the pairs it lacks) of a shipped config with the three parts chosen by override, as a user
chooses them: `vae` for the mlp encoder, `conv_vae` for conv and resnet, both in nats per
image. The sizes a config leaves unset are derived (`aejax.models.factory.part_sizes`), and a
part chosen by override brings its defaults: a bottleneck those it learns with
(`aejax.models.bottlenecks.DEFAULTS`), a convolutional encoder or decoder single compiled steps
(`aejax.models.conv.DEFAULTS`). `--encoders`, `--bottlenecks`, `--decoders` table a subset.
"""

import argparse
import itertools
import time
from pathlib import Path

import aejax
from aejax import configs
from aejax.models import factory

BASES = {"mlp": "vae", "conv": "conv_vae", "resnet": "conv_vae"}  # where each encoder's pairs start


def row(encoder: str, bottleneck: str, decoder: str, args) -> tuple[str, str | None]:
    """The table's row of one pair, and the reason it is refused (None when it trains)."""
    config = configs.override(
        configs.load(BASES[encoder]), data__name=args.dataset, train__epochs=args.epochs,
        model__encoder=encoder, model__bottleneck=bottleneck, model__decoder=decoder,
    )  # fmt: skip
    pair = (encoder, bottleneck, decoder)
    cells = f"| {' | '.join(pair)} | {BASES[encoder]} |"
    try:
        factory.build(config.model)
    except ValueError as refusal:
        return f"{cells} refused | | | |", str(refusal)
    run = aejax.fit(config, workdir=args.workdir / args.dataset / "-".join(pair))
    rows = run.metrics()  # a run finished before is read back as it trained
    seconds = sum(row["epoch_seconds"] + row["compile_seconds"] for row in rows)
    last = rows[-1]
    perplexity = f"{last['train/perplexity']:.1f}" if "train/perplexity" in last else ""
    results = f"{last['test/loss']:.1f} | {last['test/recon']:.1f} | {perplexity} | {seconds:.0f}"
    return f"{cells} {results} |", None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="mnist5k")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--workdir", type=Path, default=Path("runs/pairs"))
    parser.add_argument("--encoders", nargs="+", default=list(factory.ENCODERS), help="a subset")
    parser.add_argument("--bottlenecks", nargs="+", default=list(factory.BOTTLENECKS))
    parser.add_argument("--decoders", nargs="+", default=list(factory.DECODERS))
    args = parser.parse_args()
    rows, reasons, start = [], {}, time.perf_counter()
    for pair in itertools.product(args.encoders, args.bottlenecks, args.decoders):
        line, reason = row(*pair, args)
        rows.append(line)
        if reason:
            reasons.setdefault(reason, []).append("-".join(pair))
        print(line, flush=True)
    minutes = (time.perf_counter() - start) / 60
    print(f"\n{args.dataset}, {args.epochs} epochs, seed 0: {minutes:.0f} minutes this time\n")
    print("| encoder | bottleneck | decoder | from | test loss | recon | perplexity | seconds |")
    print("|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    for reason, pairs in reasons.items():
        print(f"\n{', '.join(pairs)}: {reason}")


if __name__ == "__main__":
    main()
