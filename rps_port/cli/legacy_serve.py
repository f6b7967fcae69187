"""`rps-port legacy serve`: run the legacy RPS REST emulator over a generated dump."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rps_port.cli.common import err_console, fail, settings_or_exit


def serve(
    data: Annotated[
        Path, typer.Option("--data", help="Generated legacy data directory (rps/*.bson or export/*.json).")
    ],
    host: Annotated[str, typer.Option("--host")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port")] = 3000,
    noise: Annotated[
        bool, typer.Option("--noise", help="Add a random request id and the server time to every answer.")
    ] = False,
    noise_touch: Annotated[
        list[str] | None,
        typer.Option(
            "--noise-touch",
            help="Document field rewritten to 'now' on every read (repeatable), e.g. updatedAt.",
        ),
    ] = None,
    latency_ms: Annotated[
        float, typer.Option("--latency-ms", help="Delay added to every API request.")
    ] = 0.0,
    error_rate: Annotated[
        float, typer.Option("--error-rate", help="Share of API requests answered 500.")
    ] = 0.0,
    timeout_rate: Annotated[
        float, typer.Option("--timeout-rate", help="Share of API requests that hang.")
    ] = 0.0,
    timeout_seconds: Annotated[
        float, typer.Option("--timeout-seconds", help="How long a hanging request hangs.")
    ] = 30.0,
    allow_writes: Annotated[
        bool, typer.Option("--allow-writes", help="Accept POST /api/orders and refunds (memory only).")
    ] = False,
    seed: Annotated[int | None, typer.Option("--seed", help="Seed for noise and fault draws.")] = None,
    jwt_secret: Annotated[
        str | None,
        typer.Option(
            "--jwt-secret",
            envvar="RPS_JWT_SECRET",
            show_envvar=True,
            help="HS256 secret of the portal tokens.",
        ),
    ] = None,
) -> None:
    """Serve the legacy REST API of CONTRACT.md from DIR, serialised exactly like Mongoose."""
    import uvicorn

    from rps_port.legacy.emulator import create_legacy_app

    settings_or_exit()
    if not jwt_secret:
        raise fail("the emulator verifies portal tokens: set RPS_JWT_SECRET (or --jwt-secret)", 2)
    try:
        app = create_legacy_app(
            data,
            jwt_secret=jwt_secret,
            noise=noise,
            noise_touch=tuple(noise_touch or ()),
            latency_ms=latency_ms,
            error_rate=error_rate,
            timeout_rate=timeout_rate,
            timeout_seconds=timeout_seconds,
            allow_writes=allow_writes,
            seed=seed,
        )
    except (FileNotFoundError, ValueError) as exc:
        raise fail(str(exc), 2) from None
    counts = app.state.store.counts()
    err_console.print(
        f"legacy emulator: {', '.join(f'{n} {c}' for c, n in counts.items())} from {data} on http://{host}:{port}"
    )
    uvicorn.run(app, host=host, port=port, log_level="warning")
