"""Benchmark rows to `results.md`, the sweep figures and the generated block of docs/benchmarks.md.

Every figure written here comes from the rows of a part's JSON lines, and every table names the
command and the machine that measured it.
"""

import datetime
import json
import os
import platform
from pathlib import Path

import jax
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

BEGIN, END = "<!-- benchmarks:begin -->", "<!-- benchmarks:end -->"
PART_TITLES = {
    "models": "Every model",
    "batch": "Against the batch size",
    "width": "Against the width",
    "devices": "Against the number of devices",
    "cache": "Persistent compilation cache",
}


def cpu() -> str:
    """The processor as Linux names it, with its family, model and widest vector unit.

    Virtual machines often report only "AMD EPYC", while EPYC generations differ twofold in
    fp32 speed (Zen 4 splits AVX-512 in two 256-bit halves, Zen 5 does not), so rows from two
    machines can only be compared knowing which generation measured them.
    """
    fields = {}
    with open("/proc/cpuinfo") as f:
        for line in f:
            key, sep, value = line.partition(":")
            if sep:
                fields.setdefault(key.strip(), value.strip())
    if "model name" not in fields:
        return platform.processor()
    flags = fields.get("flags", "").split()
    vector = {"avx512f": "AVX-512", "avx2": "AVX2", "avx": "AVX"}
    widest = next((name for flag, name in vector.items() if flag in flags), "no AVX")
    return (
        f"{fields['model name']}, family {fields.get('cpu family', '?')} "
        f"model {fields.get('model', '?')}, {widest}"
    )


def machine() -> dict:
    """What measured the rows; the backend itself is in each row (asking here would start it)."""
    return {
        "cores": os.cpu_count(),
        "cpu": cpu(),
        "jax": jax.__version__,
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def write_part(out: Path, part: str, rows: list[dict], meta: dict) -> None:
    """Replaces the part's rows and its command, machine and date."""
    (out / f"{part}.jsonl").write_text(
        "".join(json.dumps({"part": part, **r}) + "\n" for r in rows)
    )
    (out / f"{part}.meta.json").write_text(json.dumps(meta, indent=1))


def read_part(out: Path, part: str) -> tuple[list[dict], dict] | None:
    path = out / f"{part}.jsonl"
    if not path.exists():
        return None
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    return rows, json.loads((out / f"{part}.meta.json").read_text())


def _n(value, digits: int = 0) -> str:
    """A number with thousands separators; a dash where a row has no such field."""
    return "–" if value is None else f"{value:,.{digits}f}"


def _rate(row: dict, key: str) -> str:
    """Samples/s with half the range of its timed runs, where the row has it."""
    spread = row.get(f"{key}_spread")
    return _n(row[key]) + ("" if spread is None else f" ±{spread:.0%}")


def columns(peak_gflops: float) -> dict:
    """Every table column: its header and how a row shows in it."""
    return {
        "model": lambda r: r["model"],
        "batch": lambda r: r["batch"],
        "chunk": lambda r: r["chunk"],
        "widths": lambda r: r["widths"],
        "devices": lambda r: r["devices"],
        "compilation cache": lambda r: r["cache"],
        "MFLOP/sample": lambda r: _n(r["flop_per_sample"] / 1e6, 2),
        "compile s": lambda r: _n(r["compile_s"], 2),
        "to first chunk s": lambda r: _n(r["first_chunk_s"], 2),
        "whole process s": lambda r: _n(r["process_s"], 1),
        "train samples/s": lambda r: _rate(r, "samples_per_s"),
        "naive samples/s": lambda r: _rate(r, "naive_samples_per_s"),
        "aejax/naive": lambda r: f"{r['samples_per_s'] / r['naive_samples_per_s']:.2f}",
        "GFLOP/s": lambda r: _n(r["flop_per_sample"] * r["samples_per_s"] / 1e9, 1),
        "of peak": lambda r: f"{r['flop_per_sample'] * r['samples_per_s'] / peak_gflops / 1e9:.0%}",
        "against 1 device": lambda r: f"{r['speedup']:.2f}x" if "speedup" in r else "–",
        "eval samples/s": lambda r: _n(r["eval_samples_per_s"]),
        "epoch s": lambda r: _n(r.get("epoch_s"), 2),
        "naive epoch s": lambda r: _n(r.get("naive_epoch_s"), 2),
        "peak RSS MB": lambda r: _n(r["peak_rss_mb"]),
        "device peak MB": lambda r: _n(r.get("device_peak_mb")),
    }


TABLES = {  # each part's columns, and what the reader needs to know about them
    "models": (
        [
            "model",
            "batch",
            "MFLOP/sample",
            "compile s",
            "to first chunk s",
            "train samples/s",
            "naive samples/s",
            "aejax/naive",
            "of peak",
            "eval samples/s",
            "epoch s",
            "naive epoch s",
            "peak RSS MB",
            "device peak MB",
        ],
        (
            "`train samples/s`, `naive samples/s`: the median of the timed runs, ± half their "
            "range, aejax's and the naive loop's runs taking turns so that both see the same "
            "machine; "
            "`compile s`: XLA compiling the first chunk (tracing excluded); `to first chunk s`: "
            "from loading the data to the result of the first compiled chunk (`train.chunk` steps,"
            " at most an epoch), in a fresh process; `epoch s`: the second epoch of "
            "`aejax.training.loop.train_and_evaluate` (the first compiles), evaluation excluded; `naive`: "
            "one jitted step per batch gathered in host numpy; `of peak`: FLOP from XLA's cost "
            "analysis of the step against the fp32 peak above (`--peak-gflops` sets one)."
        ),
    ),
    "batch": (
        [
            "model",
            "batch",
            "chunk",
            "train samples/s",
            "naive samples/s",
            "aejax/naive",
            "of peak",
            "peak RSS MB",
        ],
        "",
    ),
    "width": (
        ["model", "widths", "MFLOP/sample", "train samples/s", "GFLOP/s", "of peak", "compile s"],
        "",
    ),
    "devices": (
        ["model", "batch", "devices", "train samples/s", "against 1 device"],
        (
            "The global batch is the config's, rounded up to a multiple of every device count. On "
            "CPU the devices are forced (`XLA_FLAGS=--xla_force_host_platform_device_count=N`) and"
            " share the machine's cores: the figure shows what splitting the batch costs there, "
            "not added compute."
        ),
    ),
    "cache": (
        ["model", "compilation cache", "compile s", "to first chunk s", "whole process s"],
        (
            "Three fresh processes in turn: none, an empty cache that the run fills, the filled "
            "one. The option is JAX's own: `JAX_COMPILATION_CACHE_DIR=DIR "
            "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS=0 "
            "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES=-1` works the same for `aejax train`; "
            "`--compilation-cache DIR` sets them for every row here."
        ),
    ),
}


def table(part: str, rows: list[dict], peak_gflops: float) -> str:
    """The part's Markdown table, and its note."""
    if part == "devices":  # each row against its model's one-device row
        one = {r["model"]: r["samples_per_s"] for r in rows if r["devices"] == 1}
        rows = [
            {**r, "speedup": r["samples_per_s"] / one[r["model"]]} if r["model"] in one else r
            for r in rows
        ]
    header, note = TABLES[part]
    show = columns(peak_gflops)
    text = [f"| {' | '.join(header)} |", f"|{'---|' * len(header)}"]
    text += [f"| {' | '.join(str(show[h](r)) for h in header)} |" for r in rows]
    return "\n".join(text) + (f"\n\n{note}" if note else "")


def _plot(path: Path, series: dict, xlabel: str, ylabel: str, title: str) -> None:
    """Lines `{(model, loop): [(x, y, error), ...]}` on log axes (the sweeps double x): one
    colour per model, solid for aejax and dashed for the naive loop, the error as a bar."""
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.set(xscale="log", yscale="log", xlabel=xlabel, ylabel=ylabel, title=title)
    colours = {}
    for (model, loop), points in series.items():
        xs, ys, errors = zip(*sorted(points), strict=True)
        colour = colours.setdefault(model, f"C{len(colours)}")
        style = "--o" if loop == "naive" else "-o"
        ax.errorbar(
            xs, ys, yerr=errors, fmt=style, color=colour, capsize=3, label=f"{model} {loop}"
        )
    xs = sorted({x for points in series.values() for x, *_ in points})
    ax.set_xticks(xs, [str(x) for x in xs], minor=False)
    ax.set_xticks([], minor=True)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _point(x, row: dict, key: str, scale: float = 1.0) -> tuple:
    """(x, y, error): the row's rate times `scale`, half the range of its timed runs as error."""
    y = row[key] * scale
    return x, y, y * row.get(f"{key}_spread", 0.0)


def plot_part(out: Path, part: str, rows: list[dict]) -> Path | None:
    """The part's figure (the sweeps only), written as OUT/PART.png."""
    series = {}
    if part == "batch":
        for r in rows:
            series.setdefault((r["model"], "aejax"), []).append(
                _point(r["batch"], r, "samples_per_s")
            )
            series.setdefault((r["model"], "naive"), []).append(
                _point(r["batch"], r, "naive_samples_per_s")
            )
        labels = ("batch size", "training samples/s", "Throughput against batch size")
    elif part == "width":
        for r in rows:
            gflops = _point(max(r["widths"]), r, "samples_per_s", r["flop_per_sample"] / 1e9)
            series.setdefault((r["model"], "aejax"), []).append(gflops)
        labels = ("layer width", "GFLOP/s achieved", "Throughput against width")
    elif part == "devices":
        for r in rows:
            series.setdefault((r["model"], "aejax"), []).append(
                _point(r["devices"], r, "samples_per_s")
            )
        labels = ("devices", "training samples/s", "Data-parallel throughput")
    else:
        return None
    path = out / f"{part}.png"
    _plot(path, series, *labels)
    return path


def peak_gflops(meta: dict) -> float:
    """The fp32 GFLOP/s a part's fractions of peak divide by: the one given, else the matmul
    measured at the start of its run."""
    return meta["peak_gflops"] or meta["matmul_gflops"]


def peak_sentence(meta: dict) -> str:
    """Where a part's fractions of peak come from, for its header."""
    matmul = "one 2048 x 2048 fp32 matmul at the start of the run"
    if not meta["peak_gflops"]:
        return f"fp32 peak: {matmul}, {meta['matmul_gflops']:.0f} GFLOP/s"
    sentence = f"fp32 peak taken as {meta['peak_gflops']:g} GFLOP/s"
    if "matmul_gflops" in meta:  # harnesses before it was measured lack it
        sentence += f" ({matmul}: {meta['matmul_gflops']:.0f})"
    return sentence


def results_markdown(out: Path, figure_dir: str) -> str:
    """The results of every part in OUT; figures linked as `figure_dir/PART.png`."""
    sections = []
    for part, title in PART_TITLES.items():
        found = read_part(out, part)
        if found is None:
            continue
        rows, meta = found
        m = meta["machine"]
        backends = sorted({f"{r['backend']} ({r['device_kind']})" for r in rows})
        measured_by = (
            f"`{meta['command']}` ({meta['minutes']:.1f} min, {m['date']}): {m['cores']} cores "
            f"({m['cpu']}), backend {', '.join(backends)}, jax {m['jax']}, "
            f"XLA_FLAGS `{m['xla_flags'] or 'none'}`, {peak_sentence(meta)}."
        )
        text = [f"### {title}", "", measured_by, ""]
        figure = plot_part(out, part, rows)
        if figure is not None:
            text += [f"![{title}]({figure_dir}/{figure.name})", ""]
        text.append(table(part, rows, peak_gflops(meta)))
        sections.append("\n".join(text))
    return "\n\n".join(sections) + "\n"


def write_results(out: Path, doc: Path | None = None) -> None:
    """Rebuilds OUT/results.md and the figures; with `doc`, its block between the markers."""
    (out / "results.md").write_text(
        "# aejax benchmarks\n\nGenerated by `python -m benchmarks.run`: do not edit.\n\n"
        + results_markdown(out, ".")
    )
    if doc is None:
        return
    text = doc.read_text()
    if BEGIN not in text or END not in text:
        raise ValueError(f"{doc} has no {BEGIN} ... {END} block to fill")
    figure_dir = os.path.relpath(out, doc.parent)
    block = f"{BEGIN}\n{results_markdown(out, figure_dir)}{END}"
    head, rest = text.split(BEGIN, 1)
    doc.write_text(head + block + rest.split(END, 1)[1])
