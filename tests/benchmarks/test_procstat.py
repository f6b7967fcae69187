"""benchmarks/procstat.py: the CPU a named server process used while a block ran, and the idle cores."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

# The benchmarks folder is not a package: its scripts import each other from their own folder.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from procstat import CpuSampler, cpu_seconds

pytestmark = pytest.mark.skipif(not Path("/proc/stat").exists(), reason="reads Linux /proc")

BURN = "import time\nend = time.process_time() + {seconds}\nwhile time.process_time() < end:\n    pass\n"


def test_counts_a_server_process_that_starts_and_exits_inside_the_block(tmp_path: Path) -> None:
    """Like a PostgreSQL backend that serves one variant's connection: born and gone in the block."""
    server = tmp_path / "fakeserver"  # the process's command name is what the sampler matches
    server.symlink_to(sys.executable)
    with CpuSampler(server="fakeserver", interval=0.05) as cpu:
        subprocess.run([str(server), "-c", BURN.format(seconds=0.6)], check=True)
        time.sleep(0.2)  # one more sample after it exited changes nothing: its last sample stays
    assert cpu.server_cpu_s is not None and 0.4 <= cpu.server_cpu_s <= 1.0
    assert cpu.idle_core_s is not None and cpu.idle_core_s >= 0


def test_no_such_process_means_no_server_figure() -> None:
    with CpuSampler(server="no-such-server-process") as cpu:
        time.sleep(0.05)
    assert cpu.server_cpu_s is None and cpu.idle_core_s is not None


def test_cpu_seconds_of_this_process_grows_with_work() -> None:
    import os

    before = cpu_seconds(os.getpid())
    end = time.process_time() + 0.2
    while time.process_time() < end:
        pass
    assert cpu_seconds(os.getpid()) - before >= 0.15
