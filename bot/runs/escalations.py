"""Escalations: the packet, the overdue note before it, acknowledgement, and reminders.

The packet is posted in the thread and broadcast; until someone acknowledges, the on-call group
is mentioned again every `escalation.renotify_every`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from bot.config import Settings
from bot.engine.durations import say_duration
from bot.engine.impact import ServiceImpact
from bot.engine.states import DONE_STEP, RunStatus
from bot.engine.verification import CONDITION_TEXT, Condition
from bot.messages.escalation import (
    EscalationPacket,
    PacketServer,
    acknowledged_message,
    escalation_message,
    overdue_message,
    renotify_message,
    said,
)
from bot.runs.outcome import Outcome
from bot.runs.plans import plan_of
from bot.runs.posting import post, update_board
from storage import repo
from storage.models import Escalation, Run, Step


def _at(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) and value else None


def _facts(condition: str, note: str, details: Mapping[str, Any]) -> tuple[str, ...]:
    """What was measured, without repeating the vendor's words."""
    failed = [f"{c['name']}: {c['detail']}" for c in details.get("checks", []) if not c["ok"]]
    if failed:
        return tuple(failed)
    if condition == Condition.CANNOT_LOG_IN.value and "waited_min" in details:
        answer = said(str(details.get("last_answer") or "no answer"))
        return (f"waited {say_duration(float(details['waited_min']) * 60)} for an install "
                f"estimated at {say_duration(float(details.get('estimate_min') or 0) * 60)}; "
                f"still no log-in ({answer})",)
    try:
        words = CONDITION_TEXT[Condition(condition)]
    except ValueError:
        words = ""
    rest = note.replace(words, "").strip(" ()") if words else note
    facts = [rest] if rest else []
    if "operation" in details:  # a join: what the operation status said, and for how long
        facts.append(f"join into {details.get('seed')}'s supercluster: operation status "
                     f"{details['operation']!r} after "
                     f"{say_duration(float(details.get('waited_min') or 0) * 60)}")
    return tuple(facts)


def _servers(details: Mapping[str, Any]) -> tuple[tuple[PacketServer, ...], str]:
    packet = details.get("packet") or {}
    rows = packet.get("servers") or details.get("servers") or []
    servers = tuple(PacketServer(r.get("node"), str(r.get("host") or ""), r.get("address"),
                                 str(r.get("state") or "unknown"), r.get("version"),
                                 r.get("serial")) for r in rows)
    if packet.get("servers_error"):
        now = f"not answering now: {said(str(packet['servers_error']))}"
        note = f"{now}; as last read before the install" if servers else now
    else:
        note = "as reported now"
    return servers, note


def build_packet(session: Session, run: Run, step: Step, outcome: Outcome, *, now: datetime,
                 settings: Settings) -> EscalationPacket:
    """Gather the escalation packet from the run, its steps and what the worker read."""
    cluster = step.cluster or run.target
    details = outcome.details
    steps = repo.steps_of(session=session, run_id=run.id)
    data = {s.key: dict(s.data or {}) for s in steps}
    sent_what = "rollback" if f"rollback:{cluster}" in data else "install"  # a recovery run
    install = data.get(f"{sent_what}:{cluster}", {})
    sent = _at(install.get("applied_at") or install.get("apply_tried_at")
               or install.get("apply_at"))
    condition = outcome.condition or ""
    if condition == Condition.CANNOT_LOG_IN.value:
        last_at = _at(data.get(f"wait_login:{cluster}", {}).get("answered_at")) or sent
        last = f"since then: {said(str(details.get('last_answer') or 'no answer'))}"
    else:
        last_at, last = now, "answered the checks"
    package = settings.packages.get(run.to_version)
    packet = details.get("packet") or {}
    servers, note = _servers(details)
    done = sorted(((s.finished_at, s.title) for s in steps
                   if s.cluster == cluster and s.status in DONE_STEP),
                  key=lambda d: (d[0] or now))
    done.append((step.started_at, f"{step.title} (started; escalated here)"))
    return EscalationPacket(
        run_name=run.name, cluster=cluster, condition=condition,
        facts=_facts(condition, outcome.note, details),
        from_version=dict(plan_of(run).from_versions).get(cluster), to_version=run.to_version,
        servers=servers, servers_note=note, tz=run.window_tz or "UTC", install_sent=sent,
        last_answer_at=last_at, last_answer=last, now=now,
        estimate_min=details.get("estimate_min"), waited_min=details.get("waited_min"),
        package_file=urlsplit(package.url).path.rsplit("/", 1)[-1] if package else None,
        sha1=(package.sha1 if package else None) or packet.get("cluster_sha1"),
        done=tuple(done), impact=ServiceImpact.from_json(packet.get("impact")),
        contact=settings.escalation.contact, notify=tuple(settings.escalation.notify),
        step_id=step.id, sent_what=sent_what)


def escalate(session: Session, run: Run, step: Step, outcome: Outcome, *, now: datetime,
             settings: Settings) -> None:
    """Record the escalation with its packet, and post the packet (thread and channel)."""
    packet = build_packet(session, run, step, outcome, now=now, settings=settings)
    repo.add_escalation(session=session, run_id=run.id, step_id=step.id, cluster=packet.cluster,
                        condition=outcome.condition or "",
                        details={**outcome.details, "packet_view": packet.to_json()}, at=now)
    post(session, run, escalation_message(packet), now)


def note_overdue(session: Session, run: Run, step: Step, now: datetime) -> None:
    """Post the overdue note once per install attempt (the outbox key makes it once)."""
    late = (step.data or {}).get("overdue")
    if not late or step.cluster is None:
        return
    attempt = (step.data or {}).get("retry_at") or ""
    post(session, run, overdue_message(run.name, step.cluster, late), now,
         key=f"{run.id}:overdue:{step.key}:{attempt}")


def acknowledge(session: Session, run: Run, user: str, now: datetime) -> list[Escalation]:
    """Mark the run's open escalations acknowledged by `user`; audit and tell the thread."""
    fresh = [e for e in repo.open_escalations(session=session, run_id=run.id)
             if e.acknowledged_at is None]
    tz = run.window_tz or "UTC"
    for esc in fresh:
        esc.acknowledged_at, esc.acknowledged_by = now, user
        repo.audit(session=session, at=now, actor=user, run_id=run.id, step_id=esc.step_id,
                   action="escalation.acknowledged",
                   detail={"cluster": esc.cluster, "condition": esc.condition})
        post(session, run, acknowledged_message(run.name, esc.cluster, user=user,
                                                at=clock_time(now, tz)), now)
    if fresh:
        update_board(session, run, now)
    return fresh


def clock_time(at: datetime, tz: str) -> str:
    """A time of day with its zone, as the thread shows it."""
    return at.astimezone(ZoneInfo(tz)).strftime("%H:%M %Z")


def renotify_due(session: Session, now: datetime, settings: Settings) -> int:
    """Mention the on-call group again for every escalation unacknowledged for `renotify_every`."""
    every = settings.escalation.renotify_every
    sent = 0
    for esc in repo.unacknowledged_escalations(session=session):
        last = esc.notified_at or esc.created_at
        if now - last < every:
            continue
        run = session.get(Run, esc.run_id)
        if run is None or run.status is not RunStatus.ESCALATED:
            continue  # aborted, or taken on some other way: nobody needs calling any more
        esc.notified_at = now
        waiting = say_duration((now - esc.created_at).total_seconds())
        # Numbered by period: two processes reminding at once queue the same message once.
        period = int((now - esc.created_at) / every)
        post(session, run, renotify_message(run.name, esc.cluster,
                                            notify=settings.escalation.notify,
                                            contact=settings.escalation.contact,
                                            waiting=waiting), now,
             key=f"{run.id}:renotify:{esc.id}:{period}")
        repo.audit(session=session, at=now, actor="system", run_id=run.id, step_id=esc.step_id,
                   action="escalation.renotified", detail={"cluster": esc.cluster})
        sent += 1
    return sent


def renotify_moments(session: Session, every: timedelta) -> list[datetime]:
    """When each unacknowledged escalation is next mentioned again."""
    escalated = {e.run_id for e in repo.unacknowledged_escalations(session=session)
                 if (run := session.get(Run, e.run_id)) is not None
                 and run.status is RunStatus.ESCALATED}
    return [(e.notified_at or e.created_at) + every
            for e in repo.unacknowledged_escalations(session=session) if e.run_id in escalated]
