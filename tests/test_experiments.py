"""The tutorial scripts of experiments/, each for one epoch of mnist5k through `run_all`: every
script leaves its figures and a finite metrics.json, and the gallery shows them all."""

import argparse
import json
import math
import sys
from pathlib import Path

import pytest
from conftest import EXPERIMENTS

sys.path.insert(0, str(EXPERIMENTS))  # the scripts import their sibling `common`, as run
import common
import run_all

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    root = tmp_path_factory.mktemp("experiments")
    gallery = root / "gallery"
    records = run_all.main(["--epochs", "1", "--runs", str(root), "--gallery", str(gallery)])
    return {r["script"]: r for r in records}, gallery


@pytest.mark.parametrize("name", run_all.SCRIPTS)
@pytest.mark.slow
def test_script_leaves_its_figures_and_finite_metrics(smoke, name):
    record = smoke[0][name]
    workdir = Path(record["workdir"])
    assert (record["dataset"], record["epochs"]) == ("mnist5k", 1)
    assert record["metrics"] and all(math.isfinite(v) for v in record["metrics"].values())
    assert record["figures"], f"{name} wrote no figure"
    for figure in record["figures"]:
        assert (workdir / figure).read_bytes()[:8] == PNG_SIGNATURE, figure
    for ref in record["published"]:  # a published figure sits beside a number we measured
        assert ref["key"] in record["metrics"] and ref["data"] and ref["source"]


def _assert_gallery_shows(records: dict, gallery: Path):
    """Every figure of every script in the gallery page and its folder, and the results table."""
    page = gallery.with_suffix(".md").read_text()
    for name, record in records.items():
        assert f"## {name}" in page
        for figure in record["figures"]:
            assert f"]({gallery.name}/{name}/{figure})" in page
            assert (gallery / name / figure).read_bytes()[:8] == PNG_SIGNATURE
    table = run_all.results_table(list(records.values()))
    assert "\n".join(table) in page
    assert len(table) - 2 == sum(max(1, len(r["published"])) for r in records.values())


@pytest.mark.slow
def test_gallery_shows_every_figure_and_every_published_number(smoke):
    _assert_gallery_shows(*smoke)


def test_a_gallery_of_one_script_shows_its_figures_and_numbers(tmp_path):
    """`--only linear_pca` (the quickest script): one epoch, its figures and its row."""
    gallery = tmp_path / "gallery"
    records = run_all.main(
        ["--epochs", "1", "--runs", str(tmp_path), "--gallery", str(gallery), "--only", "linear_pca"]
    )
    assert [r["script"] for r in records] == ["linear_pca"] and records[0]["figures"]
    assert all(math.isfinite(v) for v in records[0]["metrics"].values())
    _assert_gallery_shows({r["script"]: r for r in records}, gallery)
    assert "## mlp_reconstruction" not in gallery.with_suffix(".md").read_text()


def test_a_non_finite_result_is_refused(tmp_path):
    args = argparse.Namespace(name="demo", dataset="mnist5k", epochs=1, workdir=tmp_path)
    with pytest.raises(FloatingPointError, match="non-finite"):
        common.save_metrics(args, {"test_bce": math.nan})
    assert not (tmp_path / "metrics.json").exists()
    common.save_metrics(args, {"test_bce": 0.25})
    assert json.loads((tmp_path / "metrics.json").read_text())["metrics"] == {"test_bce": 0.25}


def test_epochs_are_given_for_all_scripts_or_one():
    parser = argparse.ArgumentParser()
    assert run_all.epochs_by_script(parser, ["2", "vae_samples=50"]) == {
        "all": 2,
        "vae_samples": 50,
    }
    for bad in ("vae_sample=50", "vae_samples=0", "many"):
        with pytest.raises(SystemExit):
            run_all.epochs_by_script(parser, [bad])
