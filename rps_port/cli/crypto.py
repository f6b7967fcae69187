"""`rps-port crypto`: field keys, key usage, and rotation."""

from __future__ import annotations

import typer

from rps_port.cli.common import console, err_console, fail, is_ci, print_json, settings_or_exit

app = typer.Typer(help="Field encryption: new keys, status, rotation.", no_args_is_help=True)


@app.command("new-key")
def new_key(kid: str = typer.Option(None, help="Key id (default: random).")) -> None:
    """Print a fresh `kid:base64key`; put it FIRST in RPS_FIELD_KEYS to make it active, then rotate."""
    from rps_port.crypto.keys import KID, new_key_spec

    if kid is not None and not KID.match(kid):
        raise fail("--kid: use 1-32 characters of A-Z a-z 0-9 _ -", 2)
    typer.echo(new_key_spec(kid))


@app.command()
def status() -> None:
    """How many values of each encrypted column are under each key (or still plaintext / legacy)."""
    from rps_port.crypto.keys import get_keyring
    from rps_port.crypto.rotate import key_usage
    from rps_port.db import make_engine

    settings = settings_or_exit()
    engine = make_engine(settings.database_url)
    ring = get_keyring(engine.dialect.name)
    print_json({"active_key": ring.active, "development_key": ring.development, "columns": key_usage(engine)})


@app.command()
def rotate(
    batch_size: int = typer.Option(500, min=1, max=100_000),
) -> None:
    """Re-encrypt every encrypted column under the active key (resumable: run it again to continue)."""
    from rps_port.crypto.keys import get_keyring
    from rps_port.crypto.rotate import rotate as do_rotate
    from rps_port.db import make_engine

    settings = settings_or_exit()
    engine = make_engine(settings.database_url)
    ring = get_keyring(engine.dialect.name)

    def progress(stats) -> None:
        if is_ci():
            print_json({"column": stats.column, "changed": stats.changed, "failed": len(stats.failed)})
        else:
            err_console.print(f"{stats.column}: {stats.changed} re-encrypted, {len(stats.failed)} failed", end="\r")

    results = do_rotate(engine, ring, legacy_secret=settings.legacy_secret.get_secret_value(),
                        batch_size=batch_size, progress=progress)
    summary = [
        {"column": s.column, "reencrypted": s.reencrypted, "encrypted_plaintext": s.encrypted_plaintext,
         "converted_legacy": s.converted_legacy, "failed": s.failed}
        for s in results
    ]
    print_json({"active_key": ring.active, "columns": summary})
    if any(s.failed for s in results):
        console.print("[red]some values could not be read; they are listed by row id and left unchanged[/red]")
        raise typer.Exit(1)
