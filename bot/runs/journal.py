"""The audit trail, told to the log and the metrics once it is committed.

Every approval, rejection, withdrawal, control and state change writes an audit entry in the
unit of work that makes it (`bot.runs.transitions`, the flows). Here session listeners collect
the entries the unit of work wrote (and the escalations each flush adds) and, only after the
commit, log one line per entry (who, what, run, step, cluster) and count steps and
escalations; a rolled-back unit of work logs and counts nothing. `install()` registers the
listeners once per process.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session, UOWTransaction
from sqlalchemy.orm.util import identity_key

from bot import metrics
from storage.models import Escalation, Run, Step
from storage.repo import AUDIT_WRITTEN

log = logging.getLogger("upgradebot.audit")
_PENDING = "upgradebot_journal"
NOTE_MAX = 200  # a step's note in a log line: enough to see why
Effect = Callable[[], None]


def install() -> None:
    """Register the session listeners (idempotent)."""
    for name, listener in (("after_flush", _collect), ("after_commit", _emit),
                           ("after_rollback", _drop)):
        if not event.contains(Session, name, listener):
            event.listen(Session, name, listener)


def _collect(session: Session, _flush: UOWTransaction) -> None:
    effects: list[Effect] = session.info.setdefault(_PENDING, [])
    for obj in session.new:
        if isinstance(obj, Escalation):
            effects.append(_escalation_effect(obj.condition))


def _escalation_effect(condition: str) -> Effect:
    return lambda: metrics.escalation(condition)


def _emit(session: Session) -> None:
    effects = session.info.pop(_PENDING, [])
    effects += [_entry_effect(session, entry) for entry in session.info.pop(AUDIT_WRITTEN, [])]
    for effect in effects:
        try:
            effect()
        except Exception:  # telling must never break the work that was just committed
            log.exception("could not log an audit entry")


def _drop(session: Session) -> None:
    session.info.pop(_PENDING, None)
    session.info.pop(AUDIT_WRITTEN, None)


def _loaded(session: Session, model: type[Any], ident: int | None) -> Any:
    """The object if this session has it loaded already (no SQL inside a flush)."""
    if ident is None:
        return None
    return session.identity_map.get(identity_key(model, ident))


def _entry_effect(session: Session, entry: Mapping[str, Any]) -> Effect:
    """What one audit row (as `repo.audit` wrote it) tells the log and the metrics."""
    run_id, action, actor = entry["run_id"], entry["action"], entry["actor"]
    run: Run | None = _loaded(session, Run, run_id)
    step: Step | None = _loaded(session, Step, entry["step_id"])
    detail = dict(entry["detail"] or {})
    fields = {"run": run.name if run is not None else (f"run #{run_id}" if run_id else None),
              "step": step.key if step is not None else detail.get("step"),
              "cluster": step.cluster if step is not None else None, "actor": actor}
    line = _describe(action, actor, detail, fields["run"])
    kind, seconds = (str(step.kind), _took(step)) if step is not None else ("", None)
    step_event = action.removeprefix("step.") if action.startswith("step.") else ""

    def effect() -> None:
        log.info("%s", line, extra=fields)
        if step_event and kind:
            metrics.step_event(kind, step_event, seconds)

    return effect


def _describe(action: str, actor: str, detail: dict[str, Any], run: str | None) -> str:
    """One sentence: "R1 run.approve (awaiting_approval → approved) by U1"."""
    moved = f" ({detail['from']} → {detail['to']})" if "from" in detail and "to" in detail else ""
    step = f" {detail['step']}" if detail.get("step") else ""
    rest = {k: v for k, v in detail.items() if k not in ("from", "to", "step") and v}
    said = " " + ", ".join(f"{k}={_short(v)}" for k, v in sorted(rest.items())) if rest else ""
    return f"{run or 'no run'} {action}{step}{moved} by {actor}{said}"


def _short(value: object) -> str:
    text = " ".join(str(value).split())
    return text if len(text) <= NOTE_MAX else text[: NOTE_MAX - 1] + "…"


def _took(step: Step) -> float | None:
    if step.started_at is None or step.finished_at is None:
        return None
    return (step.finished_at - step.started_at).total_seconds()
