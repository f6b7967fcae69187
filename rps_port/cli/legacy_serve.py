"""`rps-port legacy serve`: run the legacy RPS REST emulator over a generated dump."""

from __future__ import annotations

from pathlib import Path

import typer

from rps_port.cli.common import err_console, fail, settings_or_exit


def serve(
    data: Path = typer.Option(..., "--data", help="Generated legacy data directory (rps/*.bson or export/*.json)."),
    host: str = typer.Option("127.0.0.1", "--host"),
    port: int = typer.Option(3000, "--port"),
    noise: bool = typer.Option(False, "--noise", help="Add a random request id and the server time to every answer."),
    noise_touch: list[str] = typer.Option(
        [], "--noise-touch", help="Document field rewritten to 'now' on every read (repeatable), e.g. updatedAt."
    ),
    latency_ms: float = typer.Option(0.0, "--latency-ms", help="Delay added to every API request."),
    error_rate: float = typer.Option(0.0, "--error-rate", help="Share of API requests answered 500."),
    timeout_rate: float = typer.Option(0.0, "--timeout-rate", help="Share of API requests that hang."),
    timeout_seconds: float = typer.Option(30.0, "--timeout-seconds", help="How long a hanging request hangs."),
    allow_writes: bool = typer.Option(False, "--allow-writes", help="Accept POST /api/orders and refunds (memory only)."),
    seed: int | None = typer.Option(None, "--seed", help="Seed for noise and fault draws."),
    jwt_secret: str | None = typer.Option(
        None, "--jwt-secret", envvar="RPS_JWT_SECRET", show_envvar=True, help="HS256 secret of the portal tokens."
    ),
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
            noise_touch=tuple(noise_touch),
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
