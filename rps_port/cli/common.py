"""Shared CLI plumbing: settings with a clean error, the console, JSON output for CI."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import typer
from rich.console import Console

from rps_port.config import ConfigError, Settings, load_settings

console = Console(stderr=False)
err_console = Console(stderr=True)


def settings_or_exit(**overrides: Any) -> Settings:
    try:
        return load_settings(**{k: v for k, v in overrides.items() if v is not None})
    except ConfigError as exc:
        err_console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None


def fail(message: str, code: int = 1) -> typer.Exit:
    err_console.print(f"[red]error:[/red] {message}")
    return typer.Exit(code)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, default=str, indent=2) + "\n")


def is_ci() -> bool:
    """Plain output (no live progress bars) in CI or when stdout is not a terminal."""
    return bool(os.environ.get("CI")) or not sys.stdout.isatty()
