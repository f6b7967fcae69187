"""`rps-port serve` refuses to start on a schema that is behind, and serves when it is current."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from .conftest import SECRET, auth, make_token

RPS = str(Path(sys.executable).with_name("rps-port"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def env(url: str, **extra: str) -> dict[str, str]:  # run from a tmp dir so no rps-port.toml applies
    return {**os.environ, "RPS_DATABASE_URL": url, "RPS_JWT_SECRET": SECRET, **extra}


def test_serve_says_to_upgrade_a_database_that_is_behind(sqlite_url, tmp_path):
    r = subprocess.run([RPS, "serve", "--port", str(free_port())], env=env(sqlite_url), cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False)
    assert r.returncode != 0 and "run `rps-port db upgrade` first" in " ".join(r.stderr.split())


def test_serve_answers_requests(sqlite_db_url, tmp_path):
    port = free_port()
    proc = subprocess.Popen([RPS, "serve", "--port", str(port)], env=env(sqlite_db_url), cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/orders", headers=auth(make_token("a" * 24)), timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline and proc.poll() is None, proc.stdout.read().decode() if proc.poll() is not None else "timeout"
                time.sleep(0.2)
        assert r.status_code == 200 and r.json() == {"items": [], "next_cursor": None}
    finally:
        proc.terminate()
        proc.wait(timeout=10)
