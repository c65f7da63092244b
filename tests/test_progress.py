"""What a run shows and logs: the epoch's progress bar on a terminal only, and TensorBoard event
files holding the same numbers as metrics.jsonl."""

import fcntl
import os
import pty
import select
import struct
import subprocess
import sys
import termios
import time
import types

import pytest
import tensorboardX.event_file_writer
from tensorboardX.proto import event_pb2

from aejax.training import checkpoint, loop, progress


def read_events(path) -> list:
    """The events of one event file: TFRecords of [length u64][crc u32][event][crc u32]."""
    data, events, i = path.read_bytes(), [], 0
    while i < len(data):
        (length,) = struct.unpack("<Q", data[i : i + 8])
        events.append(event_pb2.Event.FromString(data[i + 12 : i + 12 + length]))
        i += 12 + length + 4
    return events


def scalars(workdir) -> dict:
    """{(tag, step): value} over every event file of `workdir`, later files winning."""
    found = {}
    for path in sorted(workdir.glob("events.out.tfevents.*")):
        for event in read_events(path):
            for value in event.summary.value:
                found[(value.tag, event.step)] = value.simple_value
    return found


def test_tensorboard_events_hold_each_epochs_metrics_and_a_resume_purges_the_rest(tiny, tmp_path):
    config = tiny("mlp", train__epochs=3)  # 20 steps an epoch, a checkpoint every 10
    killed, _ = loop.train_and_evaluate(config, tmp_path, max_steps=30)  # in the second epoch
    loop.train_and_evaluate(config, tmp_path)
    rows = checkpoint.read_metrics(tmp_path)
    logged = scalars(tmp_path)
    assert len(rows) == 3
    for row in rows:
        for key in ("train/loss", "test/loss", "samples_per_s"):
            assert logged[(key, row["step"])] == pytest.approx(row[key], rel=1e-6)
    [first, resumed] = sorted(tmp_path.glob("events.out.tfevents.*"))
    starts = [e.step for e in read_events(resumed) if e.session_log.status == event_pb2.SessionLog.START]
    assert starts == [int(killed.step) + 1] and 20 < starts[0] < 40  # TensorBoard hides what the
    # killed run logged after its checkpoint


def test_a_run_resumed_within_the_second_its_predecessor_opened_keeps_both_event_files(
    tmp_path, monkeypatch
):
    """tensorboardX names event files by the second: both runs open theirs in the same one."""
    frozen = types.SimpleNamespace(**{**vars(time), "time": lambda: 1_790_000_000.5})
    monkeypatch.setattr(tensorboardX.event_file_writer, "time", frozen)
    for start, rows in [(0, [10, 20]), (20, [30])]:
        log = progress.EventLog(tmp_path, start)
        for step in rows:
            log.write({"epoch": step // 10, "step": step, "train/loss": float(step)})
        log.close()
    assert len(list(tmp_path.glob("events.out.tfevents.*"))) == 2
    assert tensorboard_points(tmp_path)["train/loss"] == [10, 20, 30]


def tensorboard_points(workdir) -> dict:
    """{tag: steps} as TensorBoard's loader shows them: files in order, and a session START at
    step s drops every earlier event at step s or later (event_accumulator's purge of orphaned
    data)."""
    kept = []
    for path in sorted(workdir.glob("events.out.tfevents.*")):
        for event in read_events(path):
            if event.session_log.status == event_pb2.SessionLog.START:
                kept = [(tag, step) for tag, step in kept if step < event.step]
            kept += [(value.tag, event.step) for value in event.summary.value]
    points = {}
    for tag, step in kept:
        points.setdefault(tag, []).append(step)
    return points


@pytest.mark.slow
def test_tensorboard_keeps_every_epoch_when_a_run_is_resumed_at_an_epochs_end_or_reopened(tiny, tmp_path):
    config = tiny("mlp", train__epochs=2)  # 20 steps an epoch
    loop.train_and_evaluate(config, tmp_path, max_steps=20)  # stops where epoch 1 ends
    loop.train_and_evaluate(config, tmp_path)
    files = sorted(tmp_path.glob("events.out.tfevents.*"))
    loop.train_and_evaluate(config, tmp_path)  # complete: reopened, rewrites its figures
    assert sorted(tmp_path.glob("events.out.tfevents.*")) == files  # no empty file added
    assert tensorboard_points(tmp_path)["test/loss"] == [20, 40]


def _train(tmp_path, terminal: bool) -> str:
    """What `aejax train` writes to stderr, to a terminal or to a pipe."""
    args = [sys.executable, "-m", "aejax.cli", "train", "--config=mlp", "--workdir=run",
            "--config.train.epochs=1", "--config.model.encoder_widths=(8,)", "--config.train.chunk=4"]  # fmt: skip
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    tmp_path.mkdir()
    if not terminal:
        out = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr
        return out.stderr
    main_fd, child_fd = pty.openpty()
    fcntl.ioctl(child_fd, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # 0 columns else
    process = subprocess.Popen(args, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=child_fd)
    chunks = []  # read as it comes (a full terminal buffer would block the child), then drained;
    while True:  # our copy of child_fd stays open, so what the child wrote last is not lost
        exited = process.poll() is not None
        while select.select([main_fd], [], [], 0.1)[0]:
            chunks.append(os.read(main_fd, 65536))
        if exited:
            break
    os.close(child_fd)
    os.close(main_fd)
    assert process.returncode == 0
    return b"".join(chunks).decode(errors="replace")


@pytest.mark.slow
def test_the_progress_bar_is_drawn_on_a_terminal_and_not_into_a_log(tmp_path):
    shown = _train(tmp_path / "terminal", terminal=True)
    assert "epoch 1/1:" in shown and "/20 [" in shown  # tqdm's "epoch 1/1:  40%|...| 8/20 [..."
    logged = _train(tmp_path / "pipe", terminal=False)
    assert "epoch 1/1:" not in logged and "/20 [" not in logged
