"""Generation streams to disk: ten times the customers must not need ten times the memory."""

from __future__ import annotations

import subprocess
import sys

_SCRIPT = """
import resource, sys
from rps_port.legacy import generate
generate(sys.argv[1], int(sys.argv[2]), seed=3, fmt="bson")
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def _peak_kib(out, customers: int) -> int:
    done = subprocess.run(
        [sys.executable, "-c", _SCRIPT, str(out), str(customers)], capture_output=True, text=True, check=True
    )
    return int(done.stdout.strip().splitlines()[-1])


def test_peak_memory_does_not_grow_with_the_dataset(tmp_path):
    small = _peak_kib(tmp_path / "small", 800)
    large = _peak_kib(tmp_path / "large", 8_000)
    # ~9k vs ~89k documents: holding them would add well over 80 MiB; allow 20 MiB of slack.
    assert large - small < 20 * 1024, (small, large)
