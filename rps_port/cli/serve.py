"""`rps-port serve`: the standalone API (rps_port.api.create_app) under uvicorn."""

from __future__ import annotations

import typer

from rps_port.cli.common import console, fail, settings_or_exit
from rps_port.config import mask_url


def check_ready(settings) -> str | None:
    """Why the API cannot serve with these settings, or None."""
    from rps_port import schema

    if not (settings.jwt_secret or settings.jwt_jwks_url):
        return "set RPS_JWT_SECRET (development) or RPS_JWT_JWKS_URL (production) to verify portal tokens"
    try:
        current, heads = schema.current(settings.database_url), schema.heads(settings.database_url)
    except Exception as exc:  # noqa: BLE001 - any driver error means "cannot serve"; say which
        return f"{mask_url(settings.database_url)}: cannot read the schema version ({type(exc).__name__})"
    if current != heads:
        return (
            f"{mask_url(settings.database_url)} is at {', '.join(sorted(current)) or 'base'}, not at the heads "
            f"{', '.join(sorted(heads))}: run `rps-port db upgrade` first"
        )
    return None


def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to bind."),
    port: int = typer.Option(8000, "--port", help="TCP port."),
    workers: int = typer.Option(1, "--workers", min=1, help="uvicorn worker processes."),
) -> None:
    """Serve the customers, orders and transactions API (RPS_* settings) with uvicorn."""
    import uvicorn

    settings = settings_or_exit()
    problem = check_ready(settings)
    if problem:
        raise fail(problem)
    console.print(f"serving rps-port API on http://{host}:{port} (database {mask_url(settings.database_url)})")
    # The app's own middleware logs each request (JSON, redacted, with route and principal); uvicorn's
    # access line would only repeat it.
    if workers > 1:
        uvicorn.run("rps_port.api.app:create_app", factory=True, host=host, port=port, workers=workers,
                    access_log=False)
    else:
        from rps_port.api.app import create_app

        uvicorn.run(create_app(settings), host=host, port=port, access_log=False)
