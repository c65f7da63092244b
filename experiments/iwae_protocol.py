"""The training schedule of Burda et al. (2016) as one command, then the test NLL (k = 5000).

    python experiments/iwae_protocol.py --config iwae_k50 --dataset mnist --epochs 3280

Stage i (0 to 7) trains 3^i epochs at learning rate 1e-3 * 10^(-i/7): 3,280 epochs in all. The
whole schedule is one run of `aejax.training.loop` (an optax piecewise-constant learning rate at the
stage boundaries); each stage ends at `max_steps`, with a checkpoint, so the command resumes
an interrupted run, and `--epochs` is a budget: the schedule stops there, and a later command
with a larger budget continues the same run.

At each stage's end the test NLL is estimated on the first `--curve_images` test images (1,000;
a k = 5000 estimate takes minutes per 1,000 images on 2 CPU cores) into `nll_curve.jsonl`, drawn
with the published figures as `nll_curve.png`; the last state is scored on the whole test set
(or its first `--test_images`) into `generative.json`.
"""

import argparse
import json
from pathlib import Path

from matplotlib.figure import Figure

from aejax import configs
from aejax.data import sources
from aejax.evaluation import nll
from aejax.training import loop

STAGES = 8
BASE_LR, FINAL_LR = 1e-3, 1e-4


def stage_ends(stages: int = STAGES) -> list[int]:
    """The epoch at which each stage ends: 1, 4, 13, ..., 3280."""
    return [sum(3**j for j in range(i + 1)) for i in range(stages)]


def stage_lr(stage: int, stages: int = STAGES) -> float:
    return BASE_LR * (FINAL_LR / BASE_LR) ** (stage / (stages - 1))


def protocol_config(name: str, dataset: str, steps_per_epoch: int):
    """`name`'s config on `dataset` with the schedule's epochs and learning rates."""
    config = configs.load(name)
    config.data.name = dataset
    ends = stage_ends()
    config.train.epochs = ends[-1]
    config.opt.lr = stage_lr(0)
    config.opt.lr_boundaries = tuple(end * steps_per_epoch for end in ends[:-1])
    config.opt.lr_decay = stage_lr(1) / stage_lr(0)  # 10^(-1/7) at each boundary
    return config


REFERENCES = {  # config: the test NLLs (k = 5000) reported for its architecture and objective
    "iwae": [
        ("Burda et al. (2016), VAE, 3,280 epochs", 86.76),
        ("an independent reproduction, VAE (k = 200)", 89.78),
    ],
    "iwae_k50": [
        ("Burda et al. (2016), IWAE k = 50, 3,280 epochs", 84.78),
        ("an independent reproduction, IWAE k = 50", 86.82),
    ],
}


def train_stages(config, workdir: Path, budget_epochs: int, steps_per_epoch: int):
    """Trains stage by stage up to `budget_epochs`, yielding (epoch, state) at each stage's end
    (the last one cut at the budget)."""
    for stage, end in enumerate(stage_ends()):
        stop = min(end, budget_epochs)
        state, _ = loop.train_and_evaluate(config, workdir, max_steps=stop * steps_per_epoch)
        print(f"stage {stage} (lr {stage_lr(stage):.3g}) trained to epoch {stop}", flush=True)
        yield stop, state
        if end >= budget_epochs:
            return


def curve_point(config, workdir: Path, epoch: int, state, steps_per_epoch: int, samples, images):
    """The test NLL after `epoch` on the first `images` test images: read from `nll_curve.jsonl`
    if scored before, else computed from `state` and appended there if `state` is the one at
    the end of `epoch`; None for a stage an earlier command trained past without this score."""
    path = workdir / "nll_curve.jsonl"
    points = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
    for point in points:
        if (point["epoch"], point["samples"], point["images"]) == (epoch, samples, images):
            return point
    if int(state.step) != epoch * steps_per_epoch:
        return None
    scores = nll.evaluate_test_set(config, state.params, samples=samples, images=images)
    point = {"epoch": epoch, **scores}
    with path.open("a") as f:
        f.write(json.dumps(point) + "\n")
    print(
        f"epoch {epoch}: test NLL {point['nll']:.2f} (k = {samples}, {images} images)", flush=True
    )
    return point


def plot_curve(points: list[dict], references: list, path: Path) -> None:
    """The test NLL against epochs (log scale), each published figure a dashed line."""
    fig = Figure(figsize=(5.5, 3.5))
    ax = fig.subplots()
    epochs, nll = [p["epoch"] for p in points], [p["nll"] for p in points]
    ax.plot(epochs, nll, "o-", label=f"aejax (k = {points[0]['samples']})")
    for (label, value), style in zip(references, ("--", ":"), strict=False):
        ax.axhline(value, color="grey", linestyle=style, label=f"{label}: {value}")
    ax.set(xscale="log", xlabel="epochs", ylabel="test NLL (nats)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="iwae", help="iwae, iwae_k5 or iwae_k50")
    parser.add_argument("--dataset", default="mnist")
    parser.add_argument("--epochs", type=int, default=stage_ends()[-1], help="epoch budget")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--samples", type=int, default=5000, help="importance samples k")
    parser.add_argument(
        "--curve_images", type=int, default=1000, help="test images scored at each stage's end"
    )
    parser.add_argument(
        "--test_images", type=int, default=None, help="test images of the last score (all)"
    )
    args = parser.parse_args()
    workdir = args.workdir or Path("runs/iwae_protocol") / args.dataset / args.config
    batch_size = configs.load(args.config).train.batch_size
    steps_per_epoch = len(sources.load(args.dataset, "train")[0]) // batch_size
    config = protocol_config(args.config, args.dataset, steps_per_epoch)
    points = []
    for epoch, state in train_stages(config, workdir, args.epochs, steps_per_epoch):
        if int(state.step) > epoch * steps_per_epoch and epoch == args.epochs:
            raise SystemExit(
                f"{workdir} has trained {int(state.step) // steps_per_epoch} epochs, past the "
                f"budget of {args.epochs}: give --epochs of at least that, or another --workdir"
            )
        point = curve_point(
            config, workdir, epoch, state, steps_per_epoch, args.samples, args.curve_images
        )
        points += [point] if point else []
    plot_curve(points, REFERENCES.get(args.config, []), workdir / "nll_curve.png")
    if args.test_images == args.curve_images:  # the last point scored these images already
        scores = {k: v for k, v in points[-1].items() if k != "epoch"}
    else:
        scores = nll.evaluate_test_set(
            config, state.params, samples=args.samples, images=args.test_images
        )
    scores["epochs"] = points[-1]["epoch"]
    (workdir / "generative.json").write_text(json.dumps(scores, indent=2))
    print(json.dumps(scores), flush=True)


if __name__ == "__main__":
    main()
