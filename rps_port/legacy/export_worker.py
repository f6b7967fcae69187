"""The mongoexport files written by a second process, so JSON encoding runs on another core.

The generating process pipes batches of BSON (the bytes it encodes for the dump anyway) to a
`python -c ...run_worker` subprocess, which decodes them and writes canonical Extended JSON in
the same order. Output is byte-identical to writing in-process (a test checks it). A full pipe
blocks the sender, so memory stays bounded however far ahead generation gets. A plain subprocess
(not multiprocessing) so callers need no `if __name__ == "__main__"` guard.
"""

from __future__ import annotations

import struct
import subprocess
import sys
from pathlib import Path
from typing import BinaryIO, Self

import bson
from bson.codec_options import CodecOptions

from rps_port.legacy.writers import dumps_canonical

_BATCH_BYTES = 256 * 1024
_BUFFER = 1 << 20
_DECODE = CodecOptions(tz_aware=True)
_HEADER = struct.Struct("<BI")  # collection index, payload length
_WORKER_MAIN = "import sys; from rps_port.legacy.export_worker import run_worker; run_worker(sys.stdin.buffer, sys.argv[1:])"


class ExportWorkerError(RuntimeError):
    """The JSON export process failed; the message carries its error."""


def run_worker(source: BinaryIO, paths: list[str]) -> None:
    """The worker's loop: read (index, BSON batch) frames until EOF, append JSON lines to paths[index]."""
    handles = [open(p, "w", encoding="utf-8", newline="\n", buffering=_BUFFER) for p in paths]  # noqa: SIM115
    try:
        while header := source.read(_HEADER.size):
            index, length = _HEADER.unpack(header)
            payload = source.read(length)
            if len(payload) != length:
                raise ExportWorkerError("truncated batch on the pipe")
            out = handles[index]
            for doc in bson.decode_iter(payload, codec_options=_DECODE):
                out.write(dumps_canonical(doc))
                out.write("\n")
    finally:
        for handle in handles:
            handle.close()


class JsonExportWorker:
    """Owns the export files of several collections; feed it each document's BSON with `add`."""

    def __init__(self, paths: dict[str, Path]) -> None:
        self._index = {name: i for i, name in enumerate(paths)}
        self._proc = subprocess.Popen(
            [sys.executable, "-c", _WORKER_MAIN, *(str(p) for p in paths.values())],
            stdin=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self._pending: dict[str, list[bytes]] = {name: [] for name in paths}
        self._sizes = dict.fromkeys(paths, 0)

    def add(self, name: str, raw: bytes) -> None:
        self._pending[name].append(raw)
        self._sizes[name] += len(raw)
        if self._sizes[name] >= _BATCH_BYTES:
            self._flush(name)

    def _flush(self, name: str) -> None:
        if not self._pending[name]:
            return
        payload = b"".join(self._pending[name])
        self._pending[name].clear()
        self._sizes[name] = 0
        assert self._proc.stdin is not None
        try:
            self._proc.stdin.write(_HEADER.pack(self._index[name], len(payload)))
            self._proc.stdin.write(payload)
        except (BrokenPipeError, OSError):
            raise ExportWorkerError(f"JSON export process exited early: {self._stderr()}") from None

    def _stderr(self) -> str:
        self._proc.wait(timeout=30)
        assert self._proc.stderr is not None
        lines = self._proc.stderr.read().decode("utf-8", "replace").strip().splitlines()
        return lines[-1] if lines else f"exit code {self._proc.returncode}"

    def close(self) -> None:
        """Flush, wait for the worker to finish writing, and raise if it failed."""
        for name in self._index:
            self._flush(name)
        assert self._proc.stdin is not None
        try:
            self._proc.stdin.close()
        except (BrokenPipeError, OSError):
            pass
        if self._proc.wait() != 0:
            raise ExportWorkerError(f"JSON export failed: {self._stderr()}")
        assert self._proc.stderr is not None
        self._proc.stderr.close()

    def abort(self) -> None:
        self._proc.kill()
        self._proc.wait()
        for stream in (self._proc.stdin, self._proc.stderr):
            if stream is not None:
                try:
                    stream.close()
                except OSError:
                    pass

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
