"""The database every store test runs against: SQLite in the test's directory and a real PostgreSQL server (one per
test module, started by the suite; skipped, saying why, where none can be had) with a fresh schema per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pg_server import postgres_server
from sqlalchemy import create_engine, text


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    with postgres_server() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'depot.db'}"
    url: str = request.getfixturevalue("pg_url")
    # A fresh schema per test on the shared server: drop everything the last test left.
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    engine.dispose()
    return url
