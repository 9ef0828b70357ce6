"""A real PostgreSQL server for the tests, started from Debian's binaries in a temporary directory on a free
loopback port (initdb + pg_ctl), and stopped afterwards. ``postgres_or_skip()`` says why when it cannot be had."""

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

import pytest


def _bindir() -> Path | None:
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
    except KeyError:
        pytest.skip("running as root and there is no 'postgres' user to run PostgreSQL as")
    return ["runuser", "-u", "postgres", "--"]


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """Yields a SQLAlchemy URL ``postgresql+psycopg://depot@127.0.0.1:PORT/depot`` of a fresh server."""
    pytest.importorskip("psycopg", reason="the postgres extra (psycopg) is not installed")
    bindir = _bindir()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries not found (Debian package 'postgresql'; `make test` installs it)")
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
                              f"-c max_connections=300", "start"], check=True, capture_output=True, timeout=90)
        subprocess.run([str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "depot", "depot"],
                       check=True, capture_output=True, timeout=60)
        yield f"postgresql+psycopg://depot@127.0.0.1:{port}/depot"
    finally:
        subprocess.run([*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                       capture_output=True, timeout=60)
        shutil.rmtree(root, ignore_errors=True)
