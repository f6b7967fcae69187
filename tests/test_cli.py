"""The installed `rps-port` command: help lists every command group that exists, --version."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

import rps_port
from rps_port.cli import main

RPS_PORT = Path(sys.executable).with_name("rps-port")


def rps_port_cmd(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not (k.startswith("RPS_") and not k.startswith("RPS_TEST_"))}
    env.update(COLUMNS="200", NO_COLOR="1", TERM="dumb")
    return subprocess.run(
        [str(RPS_PORT), *args], capture_output=True, text=True, env=env, timeout=120, stdin=subprocess.DEVNULL, check=False
    )


def existing(names: list[str]) -> list[str]:
    return [n for n in names if importlib.util.find_spec(f"rps_port.cli.{n}") is not None]


GROUPS = existing([name for _, _, name in main._GROUPS])
COMMANDS = existing([name for name, _ in main._COMMANDS])


def test_console_script_is_installed() -> None:
    assert RPS_PORT.exists(), "pip install -e '.[dev]' should install the rps-port console script"


def test_help_lists_every_command_group_that_exists() -> None:
    result = rps_port_cmd("--help")
    assert result.returncode == 0, result.stderr
    listed = {line.split()[1] for line in result.stdout.splitlines() if line.startswith("│ ") and len(line.split()) > 2}
    assert {"config", "db"} <= set(GROUPS)
    assert set(GROUPS) | set(COMMANDS) <= listed
    for name in GROUPS:  # a group's module that fails to import would vanish from help silently
        assert name in listed


@pytest.mark.parametrize("group", GROUPS)
def test_each_group_has_help(group: str) -> None:
    result = rps_port_cmd(group, "--help")
    assert result.returncode == 0, result.stderr
    assert f"rps-port {group}" in result.stdout


def test_version() -> None:
    result = rps_port_cmd("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"rps-port {rps_port.__version__}"
    assert rps_port.__version__ == importlib.metadata.version("rps-port")


def test_no_arguments_shows_help() -> None:
    result = rps_port_cmd()
    assert "Usage: rps-port" in result.stdout + result.stderr
    assert "Traceback" not in result.stderr
