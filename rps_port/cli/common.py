"""Shared CLI plumbing: settings with a clean error, the console, JSON output for CI."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import typer
from rich.console import Console

from rps_port.config import ConfigError, Settings, load_settings, mask_url

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


@contextmanager
def reaching(url: str) -> Iterator[None]:
    """Around a command's first use of a database: one it cannot reach is an error message naming it
    (masked) with the driver's reason, exit 2, rather than a traceback. Errors later in a command
    keep their traceback."""
    from sqlalchemy.exc import OperationalError

    try:
        yield
    except OperationalError as exc:
        lines = [line.strip() for line in str(getattr(exc, "orig", None) or exc).strip().splitlines()]
        reason = " ".join(line for line in lines[:2] if line).replace(url, mask_url(url))
        raise fail(f"cannot reach {mask_url(url)}: {reason}", 2) from None


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
