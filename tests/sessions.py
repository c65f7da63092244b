"""Tests that need JAX started otherwise than in this pytest process: a second pytest session
whose JAX has four CPU devices, and a run shared by two processes.

The pytest process starts JAX with one CPU device. A test file with 4-device tests marks them
`four_devices`, its others `one_device`, and calls `assert_four_device_session_passes(__file__)`
from one test: that reruns the file in a subprocess with
XLA_FLAGS=--xla_force_host_platform_device_count=4, where the marks swap.
"""

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Read from the flags rather than jax.device_count(), which would start JAX's backend on import,
# before a process of a 2-process run could join it.
FOUR_DEVICES_FLAG = "--xla_force_host_platform_device_count=4"
FOUR_DEVICE_SESSION = FOUR_DEVICES_FLAG in os.environ.get("XLA_FLAGS", "")
ONLY_IN_FOUR = "runs in the 4-device session that test_four_device_session starts"
four_devices = pytest.mark.skipif(not FOUR_DEVICE_SESSION, reason=ONLY_IN_FOUR)
one_device = pytest.mark.skipif(FOUR_DEVICE_SESSION, reason="runs in the 1-device session")


def device_env(devices: int) -> dict:
    """This environment with JAX on `devices` CPU devices, importing this checkout's aejax."""
    flags = f"{os.environ.get('XLA_FLAGS', '')} {FOUR_DEVICES_FLAG[:-1]}{devices}"
    return {
        **os.environ,
        "XLA_FLAGS": flags.strip(),
        "JAX_PLATFORMS": "cpu",
        "PYTHONPATH": str(ROOT),
    }


def run_python(*args: str, devices: int) -> subprocess.CompletedProcess:
    """`python ARGS` run to its end in a fresh process whose JAX has `devices` CPU devices."""
    return subprocess.run(
        [sys.executable, *args], env=device_env(devices), cwd=ROOT, capture_output=True,
        text=True, timeout=600, check=False,
    )  # fmt: skip


def assert_four_device_session_passes(test_file: str, tmp_path: Path) -> None:
    """`test_file`'s `four_devices` tests, run in a pytest session whose JAX has four devices."""
    session = run_python(
        "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", "-n", "0",
        f"--basetemp={tmp_path}",
        test_file, devices=4,
    )  # fmt: skip
    report = session.stdout[-4000:] + session.stderr[-2000:]
    assert session.returncode == 0, report
    assert re.search(r"\d+ passed", session.stdout) and ONLY_IN_FOUR not in session.stdout, report


def run_two_processes(script: str, tmp_path: Path) -> list[str]:
    """`python SCRIPT PORT PROCESS_ID WORKDIR OUT` as processes 0 and 1 of one run, to their end:
    their standard outputs. They train in `tmp_path/run` and write `tmp_path/{0,1}.npz`."""
    with socket.socket() as s:  # a free port for the coordinator
        s.bind(("localhost", 0))
        port = s.getsockname()[1]
    commands = [
        [
            sys.executable,
            script,
            str(port),
            str(i),
            str(tmp_path / "run"),
            str(tmp_path / f"{i}.npz"),
        ]
        for i in range(2)
    ]
    processes = [
        subprocess.Popen(
            c,
            env=device_env(2),
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for c in commands
    ]
    outputs = [p.communicate(timeout=300) for p in processes]
    for p, (_, err) in zip(processes, outputs):
        assert p.returncode == 0, err[-3000:]
    return [out for out, _ in outputs]
