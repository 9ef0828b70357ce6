"""Fixtures shared by the csms_adapter tests: a store on a real SQLite file in a temporary directory, and the live
controller on the small test site (``live_site.py``) over real websockets on 127.0.0.1."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

# The tests sit in folders that mirror csms_adapter's packages; the helpers they share (a test site, scripted and
# emulated chargers, a PostgreSQL server) sit here, imported by module name.
sys.path.insert(0, str(Path(__file__).parent))

import pytest
from live_site import ENV, make_site

from csms_adapter.control.controller import Controller
from csms_adapter.store import Store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(f"sqlite:///{tmp_path / 'depot.db'}")
    yield s
    s.close()


@pytest.fixture
async def controller() -> AsyncIterator[Controller]:
    async with Controller(make_site(), env=ENV, debounce_real_s=0.05) as c:
        yield c
