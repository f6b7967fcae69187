"""Generation streams to disk: ten times the customers must not need ten times the memory."""

from __future__ import annotations

import subprocess
import sys

_SCRIPT = """
import resource, sys
from rps_port.legacy import generate
generate(sys.argv[1], int(sys.argv[2]), seed=3, fmt="both")
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def _peak_kib(out, customers: int) -> int:
    done = subprocess.run(
        [sys.executable, "-c", _SCRIPT, str(out), str(customers)], capture_output=True, text=True, check=True
    )
    return int(done.stdout.strip().splitlines()[-1])


def test_peak_memory_does_not_grow_with_the_dataset(tmp_path):
    small = _peak_kib(tmp_path / "small", 1_000)
    large = _peak_kib(tmp_path / "large", 10_000)
    # ~11k vs ~110k documents: holding them would add well over 100 MiB; allow 24 MiB of slack.
    assert large - small < 24 * 1024, (small, large)
