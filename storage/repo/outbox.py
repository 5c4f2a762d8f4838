"""The Slack outbox: queue messages idempotently, then claim and settle them for delivery.

Claims are serialized across processes by `lock_outbox`; a claim marks a row `sending` until its
lease ends (`not_before`), with `attempts` as its token, so that a delivery whose lease expired
cannot record its outcome over a newer claim's (see `bot.delivery`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, literal, select, update
from sqlalchemy.orm import Session

from storage.db import SQLITE_WRITE_LOCK
from storage.enums import UNSENT, OutboxKind, OutboxStatus, member
from storage.models import OutboxMessage
from storage.repo._shared import insert_or_find, table

OUTBOX_LOCK_KEY = 0x0757B0C5  # any constant shared by every process of the bot
# Asked at every change of a run's board: built once (a statement object keeps its cache key).
_outbox = table(OutboxMessage)
_NEWEST_EDIT = (select(_outbox.c.payload)
                .where(_outbox.c.run_id == bindparam("rid"),
                       _outbox.c.kind == OutboxKind.UPDATE.value,
                       _outbox.c.status == OutboxStatus.PENDING.value)
                .order_by(_outbox.c.id.desc()).limit(1)
                .with_for_update().execution_options(**{SQLITE_WRITE_LOCK: True}))


def enqueue_message(
    *, session: Session, at: datetime, payload: Mapping[str, Any], channel: str | None,
    run_id: int | None = None, kind: OutboxKind | str = OutboxKind.POST, thread: bool = False,
    key: str | None = None,
) -> OutboxMessage:
    """Queue a Slack message; enqueuing the same key again returns the first one unchanged."""
    kind = member(OutboxKind, kind)  # refused before anything is written
    if key is not None and (existing := _message_by_key(session, key)) is not None:
        return existing
    message = OutboxMessage(run_id=run_id, channel=channel, kind=kind, thread=thread, key=key,
                            payload=dict(payload), status=OutboxStatus.PENDING, attempts=0,
                            not_before=at, created_at=at)
    if key is None:
        session.add(message)
        session.flush()
        return message
    found = insert_or_find(session, message, lambda: _message_by_key(session, key))
    return found or message


def newest_unsent_edit(*, session: Session, run_id: int) -> dict[str, Any] | None:
    """The payload of the newest edit of a run's plan message not yet claimed, row-locked.

    Locked (PostgreSQL: the row; SQLite: the database) so that a deliverer cannot claim it
    between this look and the caller's commit: an edit found here is sent after that commit.
    """
    payload = session.execute(_NEWEST_EDIT, {"rid": run_id}).scalar()
    return None if payload is None else dict(payload)


def _message_by_key(session: Session, key: str) -> OutboxMessage | None:
    return session.scalar(select(OutboxMessage).where(OutboxMessage.key == key))


def pending_messages(*, session: Session, now: datetime, limit: int = 50) -> list[OutboxMessage]:
    """Return the messages due for sending, in the order they were queued."""
    return list(session.scalars(
        select(OutboxMessage)
        .where(OutboxMessage.status == OutboxStatus.PENDING, OutboxMessage.not_before <= now)
        .order_by(OutboxMessage.id).limit(limit)
    ))


def unsent_messages(*, session: Session, limit: int = 500) -> list[OutboxMessage]:
    """Return the messages not yet delivered (pending or being sent), oldest first."""
    return list(session.scalars(
        select(OutboxMessage).where(OutboxMessage.status.in_(UNSENT))
        .order_by(OutboxMessage.id).limit(limit)
    ))


def lock_outbox(*, session: Session) -> None:
    """Serialize outbox claims across processes until the caller's transaction ends.

    PostgreSQL: a transaction-scoped advisory lock. SQLite: the database write lock (BEGIN
    IMMEDIATE), which is what serializes SQLite writers anyway.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_advisory_xact_lock(OUTBOX_LOCK_KEY)))
    else:
        session.execute(select(literal(1)).execution_options(**{SQLITE_WRITE_LOCK: True}))


def claim_message(*, session: Session, message_id: int, lease_until: datetime) -> int | None:
    """Mark a message as being sent until `lease_until`; return its new attempt count.

    The attempt count is the claim's token: only the claimant knows it, so a delivery that lost
    its lease (and was claimed again) cannot record its result over the new claim's.
    """
    message = session.get(OutboxMessage, message_id, populate_existing=True)
    if message is None or message.status not in UNSENT:
        return None
    message.status, message.not_before = OutboxStatus.SENDING, lease_until
    message.attempts += 1
    session.flush()
    return message.attempts


def settle_message(
    *, session: Session, message_id: int, attempt: int, status: OutboxStatus | str,
    at: datetime, not_before: datetime | None = None, slack_ts: str | None = None,
    error: str | None = None,
) -> bool:
    """Record a claimed message's outcome if the claim is still ours; True when recorded."""
    status = member(OutboxStatus, status)
    values: dict[str, Any] = {"status": status, "last_error": error}
    if status == OutboxStatus.SENT:
        values.update(sent_at=at, slack_ts=slack_ts)
    if not_before is not None:
        values["not_before"] = not_before
    result = session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == message_id, OutboxMessage.status == OutboxStatus.SENDING,
               OutboxMessage.attempts == attempt)
        .values(**values).execution_options(synchronize_session=False)
    )
    return int(result.rowcount) == 1  # type: ignore[attr-defined]


def supersede_messages(*, session: Session, ids: Iterable[int]) -> None:
    """Mark queued edits that a newer edit of the same message replaces."""
    ids = list(ids)
    if ids:
        session.execute(
            update(OutboxMessage).where(OutboxMessage.id.in_(ids),
                                        OutboxMessage.status == OutboxStatus.PENDING)
            .values(status=OutboxStatus.SUPERSEDED)
            .execution_options(synchronize_session=False)
        )


def last_sent(
    *, session: Session, kind: OutboxKind | str, since: datetime,
) -> list[tuple[str | None, int | None, datetime]]:
    """Return (channel, run_id, sent_at) of messages of a kind delivered since `since`."""
    rows = session.execute(
        select(OutboxMessage.channel, OutboxMessage.run_id, OutboxMessage.sent_at)
        .where(OutboxMessage.kind == kind, OutboxMessage.status == OutboxStatus.SENT,
               OutboxMessage.sent_at >= since)
    )
    return [(channel, run_id, sent_at) for channel, run_id, sent_at in rows if sent_at]


def sent_by_run(*, session: Session, run_id: int, channel: str, ts: str) -> bool:
    """Tell whether the message `ts` in `channel` was posted by the outbox for this run."""
    return session.scalar(
        select(func.count(OutboxMessage.id)).where(
            OutboxMessage.run_id == run_id, OutboxMessage.channel == channel,
            OutboxMessage.slack_ts == ts)) != 0


def outbox_backlog(*, session: Session, now: datetime) -> tuple[int, float | None]:
    """Return how many messages wait to be delivered and the age in seconds of the oldest."""
    count, oldest = session.execute(
        select(func.count(OutboxMessage.id), func.min(OutboxMessage.created_at))
        .where(OutboxMessage.status.in_(UNSENT))
    ).one()
    if oldest is not None and oldest.tzinfo is None:  # SQLite's MIN() bypasses the column type
        oldest = datetime.fromisoformat(str(oldest)).replace(tzinfo=now.tzinfo)
    elif isinstance(oldest, str):
        oldest = datetime.fromisoformat(oldest).replace(tzinfo=now.tzinfo)
    return int(count), (now - oldest).total_seconds() if oldest is not None else None


def last_edited(*, session: Session, run_ids: Iterable[int],
                since: datetime) -> dict[int, datetime]:
    """When each run's plan message was last edited (since `since`), for fair edit turns."""
    ids = list(run_ids)
    if not ids:
        return {}
    rows = session.execute(
        select(OutboxMessage.run_id, func.max(OutboxMessage.sent_at))
        .where(OutboxMessage.kind == OutboxKind.UPDATE, OutboxMessage.status == OutboxStatus.SENT,
               OutboxMessage.run_id.in_(ids), OutboxMessage.sent_at >= since)
        .group_by(OutboxMessage.run_id)
    )
    return {run_id: at for run_id, at in rows if run_id is not None and at is not None}
