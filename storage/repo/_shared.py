"""Helpers shared by the repository modules: race-safe inserts, NULL-safe comparisons, tables."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

from sqlalchemy import ColumnElement, Table
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import InstrumentedAttribute, Session

from storage.models import Base

_R = TypeVar("_R", bound=Base)


def insert_or_find(session: Session, row: _R, find: Callable[[], _R | None]) -> _R | None:
    """Insert a row in a SAVEPOINT; on a unique clash return the row already there, else None.

    Any other integrity error (an unknown run id, say) is raised; the caller's transaction
    stays usable either way.
    """
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        existing = find()
        if existing is None:
            raise
        return existing
    return None


def same(column: InstrumentedAttribute[Any], value: Any) -> ColumnElement[bool]:
    """Compare a column with a value in SQL, where None means IS NULL."""
    return column.is_(None) if value is None else column == value


def table(model: type[Base]) -> Table:
    """A model's table, for the plain statements of hot paths (no ORM objects, no flush)."""
    return cast(Table, model.__table__)
