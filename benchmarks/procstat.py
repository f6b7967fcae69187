"""CPU accounting for the benchmarks, read from Linux /proc: one process's CPU time so far, and what
a local database server and the machine's idle cores did while a benchmark variant ran.

A client's own CPU time (`resource.getrusage`) leaves out the server's share of the work, and a
load on two cores is only as fast as client + server CPU allow; `CpuSampler` shows that split.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Self

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stat_cpu(stat: str) -> float:
    """User + system CPU seconds from the text of a /proc/<pid>/stat (fields after the command name)."""
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    return _stat_cpu(Path(f"/proc/{pid}/stat").read_text())


def _named_cpu(prefix: str) -> dict[int, float]:
    """CPU seconds so far of every process whose command name starts with `prefix`."""
    out = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # gone meanwhile
            continue
        if stat[stat.index("(") + 1:].startswith(prefix):
            out[int(entry.name)] = _stat_cpu(stat)
    return out


def _idle_seconds() -> float:
    """Idle + I/O-wait time of all cores so far (core-seconds)."""
    values = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    return (int(values[3]) + int(values[4])) / _TICK


class CpuSampler:
    """While the block runs: CPU seconds of the local processes named `server` (PostgreSQL's
    backends, its parallel and background workers) and the machine's idle core-seconds.

    Processes are sampled every `interval` seconds, so a backend that exits in between loses at most
    its last interval. Where /proc is missing (not Linux), or no such process ran (a remote server),
    `server_cpu_s` is None."""

    def __init__(self, server: str = "postgres", interval: float = 0.25) -> None:
        self.server, self.interval = server, interval
        self.server_cpu_s: float | None = None
        self.idle_core_s: float | None = None
        self._available = Path("/proc/stat").exists()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="cpu-sampler", daemon=True)
        self._start: dict[int, float] = {}
        self._last: dict[int, float] = {}
        self._idle0 = 0.0

    def _sample(self) -> None:
        for pid, cpu in _named_cpu(self.server).items():
            self._last[pid] = cpu

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def __enter__(self) -> Self:
        if self._available:
            self._start = _named_cpu(self.server)
            self._last = dict(self._start)
            self._idle0 = _idle_seconds()
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if not self._available:
            return
        self._stop.set()
        self._thread.join()
        self._sample()
        self.idle_core_s = _idle_seconds() - self._idle0
        used = sum(cpu - self._start.get(pid, 0.0) for pid, cpu in self._last.items())
        self.server_cpu_s = used if self._last else None
