"""A throw-away PostgreSQL server from the machine's own binaries (Debian's ``postgresql``): initdb and pg_ctl in
a temporary directory, on a free loopback port, trust authentication for one user. For benchmarks and tests of
the shared database; never for production."""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server can be started here; the message says why."""


def server_bindir() -> Path | None:
    found = shutil.which("pg_ctl")
    if found:
        return Path(os.path.realpath(found)).parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(versions[-1]).parent if versions else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _as_postgres_user() -> list[str]:
    """initdb refuses to run as root: run the server as the Debian ``postgres`` user then."""
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam("postgres")
    except KeyError as exc:
        raise PostgresUnavailable("running as root and there is no 'postgres' user to run PostgreSQL as") from exc
    return ["runuser", "-u", "postgres", "--"]


@contextlib.contextmanager
def local_postgres(max_connections: int = 300) -> Iterator[str]:
    """Yields the SQLAlchemy URL ``postgresql+psycopg://depot@127.0.0.1:PORT/depot`` of a fresh server, stopped
    and deleted afterwards. Raises PostgresUnavailable when the driver or the server binaries are missing."""
    try:
        import psycopg  # noqa: F401
    except ImportError as exc:
        raise PostgresUnavailable("the postgres extra (psycopg) is not installed: pip install -e '.[postgres]'"
                                  ) from exc
    bindir = server_bindir()
    if bindir is None:
        raise PostgresUnavailable("PostgreSQL server binaries not found (Debian package 'postgresql')")
    prefix = _as_postgres_user()
    root = Path(tempfile.mkdtemp(prefix="depotctl-pg-"))
    data, sockets = root / "data", root / "sock"
    sockets.mkdir()
    if prefix:
        shutil.chown(root, "postgres")
        shutil.chown(sockets, "postgres")
    port = _free_port()
    try:
        subprocess.run([*prefix, str(bindir / "initdb"), "-D", str(data), "-U", "depot", "-A", "trust", "--no-sync",
                        "-E", "UTF8"], check=True, capture_output=True, timeout=120)
        subprocess.run([*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-w", "-t", "60", "-l", str(root / "log"),
                        "-o", f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=off "
                              f"-c max_connections={max_connections}", "start"],
                       check=True, capture_output=True, timeout=90)
        subprocess.run([str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "depot", "depot"],
                       check=True, capture_output=True, timeout=60)
        yield f"postgresql+psycopg://depot@127.0.0.1:{port}/depot"
    except subprocess.CalledProcessError as exc:
        raise PostgresUnavailable(f"{exc.cmd[len(prefix)]} failed: {exc.stderr.decode(errors='replace')[-500:]}"
                                  ) from exc
    finally:
        subprocess.run([*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                       capture_output=True, timeout=60)
        shutil.rmtree(root, ignore_errors=True)
