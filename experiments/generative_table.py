"""Scores every shipped generative config by its samples: docs/generative_table.md's FID,
precision, recall, and NLL where it is a likelihood.

    python experiments/generative_table.py --datasets mnist fashion_mnist   # MNIST in $AEJAX_IDX_DIR

Per dataset, in `--workdir/DATASET/`: the feature network (`fidelity_features`, trained once,
reused after), then every shipped config whose runs sample (a VAE, a WAE or adversarial AE,
a learned prior over a VQ-VAE's codes), trained for its own epochs (or `--epochs`), each an
ordinary aejax run resumed if present; a prior's autoencoder run is trained first, beside it.
Each is scored by `fidelity.evaluate_run` (`--samples` samples, seed 0, against the whole test
set) and, for a posterior with a density (`capabilities.posterior_density`: a gaussian) on
binarised data, by `nll.evaluate_test_set`
(k = `--nll_samples` on the first `--nll_images` test images); `fidelity.json` goes in its run
directory, and read back by a rerun with the same sample counts and epochs. A first row
scores the first `--samples` training images as if they were samples:
what a generator that reproduced the data would reach with as many images.

With `--samplers mixture two_stage transformer`, each config is also scored with each sampler
fitted to its training codes (`aejax.Run.fit_sampler`): a Gaussian mixture of `--components`, a
two-stage VAE or a transformer over the binned codes trained `--sampler_epochs`, in rows
"NAME + mixture", "NAME + two-stage VAE" and "NAME + transformer" (`fidelity_SAMPLER.json`); with no `--only`, every shipped config
whose model decodes continuous codes is, deterministic autoencoders among them, which have no
prior of their own. With `--reconstructions`, a row "NAME reconstructions" scores the decoded
codes of the first `--samples` training images: what a sampler of its codes could reach at best.
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from aejax import api, configs
from aejax.data import sources
from aejax.evaluation import code_mixture, code_vae, fidelity, nll
from aejax.models import factory
from aejax.training import loop


def generative_configs() -> list[str]:
    """The shipped configs whose runs sample, as their models declare (`api.can_sample`)."""
    return [n for n in configs.names() if api.can_sample(factory.build(configs.load(n).model))]


def mixture_configs() -> list[str]:
    """The shipped configs whose models decode continuous codes (not codebook indices, not a
    prior's): those a mixture fitted to the codes lets sample."""

    def continuous(name: str) -> bool:
        capabilities = factory.build(configs.load(name).model).capabilities
        return capabilities.reconstructs and not capabilities.indexed_codes

    return [n for n in configs.names() if continuous(n)]


SAMPLER_ROWS = {"mixture": "mixture", "two_stage": "two-stage VAE", "transformer": "transformer"}


def real_row(net: api.Run, data_cfg, samples: int) -> dict:
    """Scores of the first `samples` training images against the test set."""
    test = sources.from_config(data_cfg, "test").images
    train_images = sources.from_config(data_cfg, "train").images[:samples]
    return fidelity.scores(fidelity.features(net, test), fidelity.features(net, train_images))


def reconstruction_scores(run: api.Run, net: api.Run, samples: int) -> dict:
    """Scores of the decoded codes of the first `samples` training images against the test set:
    the best any sampler of the run's codes could do with as many images."""
    test = sources.from_config(run.config.data, "test").images
    train_images = sources.from_config(run.config.data, "train").images[:samples]
    decoded = np.clip(run.reconstruct(train_images), 0, 1)
    return fidelity.scores(fidelity.features(net, test), fidelity.features(net, decoded))


def train_config(name: str, dataset: str, args: argparse.Namespace) -> Path:
    """Trains (or resumes) the shipped config `name` on `dataset`, for `--epochs` if given; a
    prior over another run's codes first trains the shipped config its `init_from` names."""
    config = configs.load(name)
    config.data.name = dataset
    if args.epochs is not None:
        config.train.epochs = args.epochs
    if config.train.init_from:
        base = train_config(Path(config.train.init_from).name, dataset, args)
        config.train.init_from = str(base)
    workdir = args.workdir / dataset / name
    loop.train_and_evaluate(config, workdir)
    return workdir


def score_config(
    name: str, dataset: str, args: argparse.Namespace, features: Path, sampler: str = "prior"
) -> dict:
    """The run's scores with samples drawn from `sampler` ("prior", or one of
    `api.FITTED_SAMPLERS`, fitted to its codes first), read back from its `fidelity.json`
    (`fidelity_SAMPLER.json`) when they were made by the same protocol (sample counts, epochs,
    components, sampler epochs); its training time, summed over its epochs."""
    workdir = train_config(name, dataset, args)
    run = api.load_run(workdir)
    density = run.model.capabilities.posterior_density  # importance sampling's q(z|x)
    nll_wanted = sampler == "prior" and density and run.config.data.binarize != "none"
    protocol = {"samples": args.samples, "epochs": run.config.train.epochs}
    if nll_wanted:  # grey data: a loss, not a density
        protocol.update(nll_samples=args.nll_samples, nll_images=args.nll_images)
    if sampler == "mixture":
        protocol.update(components=args.components)
    if sampler in ("two_stage", "transformer"):
        protocol.update(sampler_epochs=args.sampler_epochs)
    scored = workdir / ("fidelity.json" if sampler == "prior" else f"fidelity_{sampler}.json")
    result = json.loads(scored.read_text()) if scored.exists() else {}
    if any(result.get(key) != value for key, value in protocol.items()):
        if sampler in api.FITTED_SAMPLERS:
            run.fit_sampler(components=args.components, kind=sampler, epochs=args.sampler_epochs)
        if sampler == "reconstructions":
            result = reconstruction_scores(run, api.load_run(features), args.samples)
        else:
            result = fidelity.evaluate_run(
                run, features, samples=args.samples, feature_epochs=args.feature_epochs,
                sampler=sampler,
            )  # fmt: skip
        if nll_wanted:
            test_nll = nll.evaluate_test_set(
                run.config, run.params, samples=args.nll_samples, images=args.nll_images
            )
            result.update(
                nll=test_nll["nll"], nll_samples=test_nll["samples"], nll_images=test_nll["images"]
            )
        result.update(protocol)
        scored.write_text(json.dumps(result, indent=2))
    result["train_seconds"] = sum(row["epoch_seconds"] for row in run.metrics())
    print(name, sampler, dataset, json.dumps(result), flush=True)
    return result


def table(dataset: str, net: api.Run, real: dict, rows: dict, args) -> list[str]:
    accuracy = net.metrics()[-1]["test/accuracy"]
    tested = len(sources.from_config(net.config.data, "test"))
    lines = [
        f"## {dataset}",
        "",
        (
            f"Feature network: `fidelity_features`, {net.config.train.epochs} epochs, test accuracy "
            f"{accuracy:.4f}. {args.samples} samples (seed 0) against {tested} test images."
        ),
        "",
        "| model | epochs | FID ↓ | precision ↑ | recall ↑ | NLL (nats) ↓ | training |",
        "|---|---|---|---|---|---|---|",
        (
            f"| training images (real) | | {real['fid']:.2f} | {real['precision']:.3f} | "
            f"{real['recall']:.3f} | | |"
        ),
    ]
    for name, r in rows.items():
        nll = (
            f"{r['nll']:.2f} (k={r['nll_samples']}, {r['nll_images']} images)"
            if "nll" in r
            else "—"
        )
        lines.append(
            f"| {name} | {r['epochs']} | {r['fid']:.2f} | {r['precision']:.3f} | "
            f"{r['recall']:.3f} | {nll} | {r['train_seconds']:.0f} s |"
        )
    return [*lines, ""]


def main(argv: list[str] | None = None) -> list[str]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["mnist", "fashion_mnist"])
    parser.add_argument(
        "--only", nargs="*", default=None, help="configs (default: all that sample)"
    )
    parser.add_argument("--epochs", type=int, help="for every config (default: each its own)")
    parser.add_argument("--feature_epochs", type=int, help="smoke runs only: not the protocol's")
    parser.add_argument("--samples", type=int, default=fidelity.SAMPLES)
    parser.add_argument("--nll_samples", type=int, default=5000, help="importance samples k")
    parser.add_argument("--nll_images", type=int, default=1000, help="first N test images")
    parser.add_argument(
        "--samplers", nargs="*", default=[], choices=api.FITTED_SAMPLERS,
        help="also score these samplers fitted to each run's codes",
    )  # fmt: skip
    parser.add_argument("--components", type=int, default=code_mixture.COMPONENTS)
    parser.add_argument("--sampler_epochs", type=int, default=code_vae.EPOCHS, help="two_stage's, transformer's")
    parser.add_argument(
        "--reconstructions", action="store_true", help="also score decoded training codes"
    )
    parser.add_argument("--workdir", type=Path, default=Path("runs/generative_table"))
    parser.add_argument("--out", type=Path, default=Path("docs/generative_table.md"))
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(argv)
    sampling, continuous = generative_configs(), mixture_configs()
    names = [n for n in args.only or sampling if n in sampling]  # a deterministic AE: mixture only
    decodes = [n for n in args.only or continuous if n in continuous]
    fitted_names = decodes if args.samplers or args.reconstructions else []
    command = " ".join(["python experiments/generative_table.py", *argv])
    lines = ["# Generative evaluation of the shipped generative models", "",
             (f"Written by `{command}`; protocol in [generative_evaluation.md]"
             "(generative_evaluation.md)."), ""]  # fmt: skip
    for dataset in args.datasets:
        features = args.workdir / dataset / "fidelity_features"
        data_cfg = configs.load((names or fitted_names)[0]).data
        data_cfg.name = dataset
        net = fidelity.feature_run(data_cfg, features, args.feature_epochs)
        real = real_row(net, data_cfg, args.samples)
        rows = {name: score_config(name, dataset, args, features) for name in names}
        for name in fitted_names:
            for sampler in args.samplers:
                row = f"{name} + {SAMPLER_ROWS[sampler]}"
                rows[row] = score_config(name, dataset, args, features, sampler)
            if args.reconstructions:
                row = score_config(name, dataset, args, features, "reconstructions")
                rows[f"{name} reconstructions"] = row
        lines += table(dataset, net, real, rows, args)
        args.out.write_text("\n".join(lines))  # after each dataset: a partial table survives
    print("\n".join(lines))
    return lines


if __name__ == "__main__":
    main()
