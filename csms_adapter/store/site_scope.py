"""Limiting a session to one site's rows, without writing ``site == …`` into every query.

Every table with a ``site`` column is site-scoped. A session given a site (``scope_to_site``) adds that
condition to each ORM SELECT, UPDATE and DELETE touching such a table, and stamps new rows with the site before
they are flushed. Core statements that bypass the ORM (bulk inserts) set ``site`` themselves."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event, update
from sqlalchemy.orm import ORMExecuteState, with_loader_criteria
from sqlmodel import Session, SQLModel


def site_scoped_models() -> list[type[Any]]:
    """The table models that carry a ``site`` column."""
    out = []
    for mapper in SQLModel._sa_registry.mappers:
        table = getattr(mapper.class_, "__table__", None)
        if table is not None and "site" in table.c:
            out.append(mapper.class_)
    return out


def scope_to_site(session: Session, site: str) -> None:
    """Limit ``session`` to ``site``'s rows (reads, updates, deletes) and stamp its new rows with it."""
    models = site_scoped_models()

    @event.listens_for(session, "do_orm_execute")
    def _only_this_site(state: ORMExecuteState) -> None:
        if state.is_select or state.is_update or state.is_delete:
            for model in models:
                state.statement = state.statement.options(
                    with_loader_criteria(model, lambda cls: cls.site == site, include_aliases=True))

    @event.listens_for(session, "before_flush")
    def _stamp_new_rows(sess: Session, _context: Any, _instances: Any) -> None:
        for row in sess.new:
            if hasattr(row, "site") and not getattr(row, "site", None):
                row.site = site


def claim_unowned_rows(session: Session, site: str) -> int:
    """Give rows written before sites existed (``site = ''``) to ``site``; returns how many were claimed."""
    claimed = 0
    for model in site_scoped_models():
        if model.__tablename__ == "sites":
            continue
        result = session.connection().execute(
            update(model.__table__).where(model.__table__.c.site == "").values(site=site))
        claimed += result.rowcount or 0
    return claimed
