"""What a run shows and keeps as it trains, on process 0 only: a progress bar within each epoch
on a terminal, and each epoch's metrics as TensorBoard events beside `metrics.jsonl`.

The bar advances when a chunk of steps is dispatched, not when it has run: reading the device
each step would stall the pipeline (dispatch is asynchronous), so the bar may run ahead and
then wait at the epoch's end, where the host reads the metrics anyway.

TensorBoard events are written with tensorboardX: numpy and protobuf, no TensorFlow. clu's
`metric_writers` would write them through `tf.summary`, which needs TensorFlow (or PyTorch for
its torch writer), and aejax installs neither.
"""

import time
from pathlib import Path

import tensorboardX
import tqdm

from aejax.training import parallel


def epoch_bar(epoch: int, epochs: int, steps: int, done: int) -> tqdm.tqdm:
    """The bar of epoch `epoch` (from 0) of `steps` steps, `done` of them already taken.

    Shown only when stderr is a terminal (tqdm's `disable=None`); a log file gets the plain
    epoch lines alone. Closing it erases it, so the epoch line takes its place.
    """
    return tqdm.tqdm(
        total=steps,
        initial=done,
        desc=f"epoch {epoch + 1}/{epochs}",
        unit="step",
        leave=False,
        disable=None if parallel.is_main_process() else True,
    )


class EventLog:
    """Each epoch's row of `metrics.jsonl` as TensorBoard scalars at its step, in `workdir`, with
    any histograms the epoch gives.

    A resumed run starts at `step`: events a killed run wrote after it are purged from
    TensorBoard's view, as `checkpoint.truncate_metrics` drops their lines. TensorBoard drops
    every earlier event at or after a file's purge step, so it is `step + 1`: the row logged at
    `step` itself stays. The file is opened with the first row, so reopening a complete run
    writes none. tensorboardX names a file by the second it opened in, and a run resumed within
    that second would overwrite its predecessor's: a nanosecond suffix keeps both, in order.
    """

    def __init__(self, workdir: Path, step: int):
        self.workdir, self.step, self.writer = workdir, step, None

    def write(self, row: dict, histograms: dict | None = None) -> None:
        """The row's scalars, and `histograms` ({name: values}), at the row's step."""
        if not parallel.is_main_process():
            return
        if self.writer is None:
            purge = self.step + 1 if self.step else None
            self.writer = tensorboardX.SummaryWriter(
                str(self.workdir), purge_step=purge, filename_suffix=f".{time.time_ns()}"
            )
        for key, value in row.items():
            if key not in ("epoch", "step"):
                self.writer.add_scalar(key, value, row["step"])
        for key, values in (histograms or {}).items():
            self.writer.add_histogram(key, values, row["step"])
        self.writer.flush()  # once an epoch: what a killed run logged is on disk

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
