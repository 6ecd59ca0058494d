"""`medkg serve`: the HTTP API (api/) under uvicorn, and `medkg users add|list|revoke`: its API keys."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

users_app = typer.Typer(no_args_is_help=True, help="API keys of `medkg serve` (stored as salted hashes).")


def serve(host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
          port: Annotated[int, typer.Option(help="port", min=1, max=65535)] = 8000,
          log_level: Annotated[str, typer.Option(help="uvicorn log level")] = "info",
          workers: Annotated[int, typer.Option(help="server processes (each loads the models); the rate limit is "
                                                    "shared between them through the feed buffer when one is "
                                                    "configured", min=1, max=64)] = 1) -> None:
    """Start the HTTP API: the embedded graph server unless NEO4J_URI is set, models loaded once at start-up,
    state in MEDKG_DATA_DIR. Create a key first: `medkg users add NAME --role clerk`."""
    import uvicorn

    # keep-alive 30 s (uvicorn's default 5 s closes pooled client connections that wait under load, and a client
    # reusing one as it closes gets a reset). The app is named by its factory, so that each worker builds its own.
    uvicorn.run("api.app:create_app", factory=True, workers=workers, host=host, port=port, log_level=log_level,
                log_config=_log_config(log_level), proxy_headers=False, timeout_keep_alive=30,
                timeout_graceful_shutdown=10)


def _log_config(level: str) -> dict:
    """uvicorn's logging, plus the application's own ``medkg.*`` loggers on the same handler and level (in every
    worker: uvicorn applies it in each process)."""
    import copy

    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["medkg"] = {"handlers": ["default"], "level": level.upper(), "propagate": False}
    return config


def _users():
    from api.auth import Users
    from api.store import Database
    from core.settings import get_settings

    data = get_settings().data_dir.expanduser()
    return Users(Database(data / "medkg-api.sqlite3"))


@users_app.command("add")
def users_add(name: Annotated[str, typer.Argument(help="who the key is for")],
              role: Annotated[str, typer.Option(help="clerk | clinician | researcher | integration | admin")]) -> None:
    """Create a key for NAME; the key is printed once (only its salted hash is stored)."""
    from api.auth import UserError

    try:
        key = _users().add(name, role)
    except (UserError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    sys.stdout.write(key + "\n")


@users_app.command("list")
def users_list() -> None:
    """Users and their keys' ids, roles and state, as JSON lines (never a key)."""
    for user in _users().list():
        sys.stdout.write(json.dumps(user, ensure_ascii=False) + "\n")


@users_app.command("revoke")
def users_revoke(name: Annotated[str, typer.Argument(help="the user whose keys stop working now")]) -> None:
    """Revoke NAME's active keys."""
    n = _users().revoke(name)
    if not n:
        typer.echo(f"no active key for {name!r}", err=True)
        raise typer.Exit(1)
    typer.echo(f"revoked {n} key(s) of {name!r}", err=True)
