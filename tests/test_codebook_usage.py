"""A quantised code's use of its codebook, logged each epoch: the fraction of entries the test
set chooses, per level, and each used entry's share in TensorBoard."""

import numpy as np
import pytest
from test_progress import read_events

import aejax
from aejax.data import sources
from aejax.data.dataset import as_float


@pytest.mark.slow
@pytest.mark.parametrize("name", ["vqvae", "rvq"])
def test_each_epoch_logs_the_share_of_the_codebook_the_test_set_uses(tiny, tmp_path, name):
    """Two epochs of mnist5k through `aejax.fit`, the config's layers at most 8 wide: each row's
    `test/codebook_used` (and a residual codebook's later levels') is the fraction of entries
    the test images' codes choose, recomputed here from the trained run's indices; TensorBoard
    has the used entries' shares each epoch."""
    config = tiny(name, max_width=8, model__code_dim=4)
    run = aejax.fit(config, workdir=tmp_path, train__epochs=2)
    rows = run.metrics()
    images = as_float(sources.dataset("mnist5k", "test").images)
    indices = np.asarray(run.model.apply({"params": run.params}, images, method="encode").indices)
    levels = indices.reshape(-1, indices.shape[-1] if indices.ndim == 3 else 1).T
    for level, chosen in enumerate(levels):
        used = len(np.unique(chosen)) / config.model.num_codes
        assert rows[-1][f"test/codebook_used{level + 1 if level else ''}"] == pytest.approx(used)
    assert len(levels) == (config.model.rvq_levels if name == "rvq" else 1)
    shares = [
        (event.step, value.histo.num, value.histo.sum)
        for path in tmp_path.glob("events.out.tfevents.*")
        for event in read_events(path)
        for value in event.summary.value
        if value.tag == "test/code_share"
    ]
    assert [step for step, _, _ in sorted(shares)] == [r["step"] for r in rows]
    for (_, entries, total), row in zip(sorted(shares), rows, strict=True):
        assert entries == round(row["test/codebook_used"] * config.model.num_codes)
        assert total == pytest.approx(1.0)
