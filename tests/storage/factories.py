"""Small builders for storage tests: a run with a plan of steps, at a fixed time."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from storage import repo
from storage.models import Run, Step

T0 = datetime(2026, 11, 25, 22, 0, tzinfo=UTC)


def make_run(session: Session, **fields: Any) -> Run:
    """Insert a running supercluster run; keyword arguments override the defaults."""
    values: dict[str, Any] = {
        "target": "global", "target_kind": "supercluster", "to_version": "10.1.0.1",
        "strategy": "basic", "strategy_reason": "patch upgrade", "status": "running",
        "requester": "U0REQUESTER", "channel": "C0UPGRADES", "message_ts": None,
        "plan": {"version": 1}, "plan_digest": "digest", "created_at": T0,
    }
    values.update(fields)
    return repo.add_run(session=session, **values)


def step(key: str, seq: int, *, deps: Sequence[str] = (), **fields: Any) -> dict[str, Any]:
    """Return the fields of a step named `key` ("kind:cluster")."""
    kind, _, cluster = key.partition(":")
    values: dict[str, Any] = {
        "seq": seq, "key": key, "kind": kind, "cluster": cluster or None, "deps": list(deps),
        "params": {}, "estimate_s": 60.0, "title": key, "safe_point": False,
    }
    values.update(fields)
    return values


def add_chain(session: Session, run: Run, keys: Sequence[str]) -> list[Step]:
    """Add steps that each depend on the one before."""
    fields = [step(key, i, deps=keys[i - 1 : i]) for i, key in enumerate(keys)]
    return repo.add_steps(session=session, run=run, steps=fields)
