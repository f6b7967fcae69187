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
        settings = load_settings(**{k: v for k, v in overrides.items() if v is not None})
    except ConfigError as exc:
        err_console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    _log_to_file(settings)
    return settings


def _log_to_file(settings: Settings) -> None:
    """JSON log lines (redacted) to settings.log_file or ./rps-port.log; the terminal stays with rich."""
    from rps_port.observability.logging import configure_logging

    try:
        configure_logging(settings, cli=True)
    except OSError as exc:
        err_console.print(f"[yellow]warning:[/yellow] not logging to a file: {exc.strerror}")


def fail(message: str, code: int = 1) -> typer.Exit:
    err_console.print(f"[red]error:[/red] {message}")
    return typer.Exit(code)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, default=str, indent=2) + "\n")


def print_json_line(event: Any) -> None:
    """One JSON object on one line (rich's console would wrap it at the terminal width)."""
    sys.stdout.write(json.dumps(event, default=str) + "\n")
    sys.stdout.flush()


def is_ci() -> bool:
    """Plain output (no live progress bars) in CI or when stdout is not a terminal."""
    return bool(os.environ.get("CI")) or not sys.stdout.isatty()
