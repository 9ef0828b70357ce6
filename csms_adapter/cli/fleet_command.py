"""``depotctl fleet --db URL [--listen HOST:PORT]``: the read-only view across every depot in one database."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from rich.console import Console

from csms_adapter.fleet import DEFAULT_LISTEN

err = Console(stderr=True)


def register(app: typer.Typer) -> None:
    @app.command("fleet")
    def fleet(
        db: Annotated[str, typer.Option("--db", help="database URL, e.g. postgresql+psycopg://USER@HOST:PORT/DB")],
        listen: Annotated[str, typer.Option("--listen", help="HOST:PORT to serve on")] = DEFAULT_LISTEN,
    ) -> None:
        """Serve a read-only dashboard and JSON API (/api/sites) across every site in the database."""
        from csms_adapter.fleet.server import bind, serve  # the web stack: only when the command runs
        from csms_adapter.store.engine import StoreError

        url = db if "://" in db else f"sqlite:///{db}"
        try:
            sock = bind(listen)
        except (OSError, ValueError) as exc:
            err.print(f"error: cannot listen on {listen}: {exc}", highlight=False, markup=False)
            raise typer.Exit(2) from None
        try:
            asyncio.run(serve(url, sock, lambda address: print(f"Fleet view: {address}", flush=True)))
        except StoreError as exc:
            err.print(f"error: {exc}", highlight=False, markup=False)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            pass
