"""The benchmarks' throw-away PostgreSQL server for the tests: skipped, saying why, where none can be had."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest

from benchmarks.pg_local import PostgresUnavailable, local_postgres


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    try:
        with local_postgres() as url:
            yield url
    except PostgresUnavailable as exc:
        pytest.skip(str(exc))
