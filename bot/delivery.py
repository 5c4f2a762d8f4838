"""Outbox delivery that several bot processes can share one database for, into any sink.

Slack (`bot.slack.sink`), the rehearsal's console and the tests' recorders all go through this
one deliverer. Reading pending rows without a claim would let two processes send every message
twice; here each round first takes a lock that serializes *claiming* across
processes (PostgreSQL: `pg_advisory_xact_lock`; SQLite: its write lock), chooses what may go now,
and marks those rows `sending` with a lease (`not_before` = lease end, `attempts` + 1 as the
claim's token), then commits. Slack is called with no transaction open. The outcome is recorded
only if the row is still `sending` with our token; a process that died mid-send leaves a lease
that expires, and the row is claimed again (at-least-once: a crash between Slack's answer and the
commit can repeat that one message).

What may go now (decided by `choose`, a pure function):
- posts of a run (or, without a run, of a channel) in queue order: only the oldest unsent one,
  and only when no earlier one is in flight; so thread replies keep their order;
- at most one new post per channel per `min_interval_s`, counting posts in flight and those sent
  recently by any process;
- edits of the plan message (the status board): only the newest one of a run (older ones are
  superseded, so a board is never more than one edit behind), once the plan message exists, at
  most one per run every `edit_interval_s` (chat.update is tier 3), and they share the
  channel's pace: an edit goes only where no post or edit went within `min_interval_s`, none is
  in flight, and no post takes the channel this round. Posts are chosen first and never count
  edits, so a run's thread replies never wait behind another run's board edits; among the runs
  of a busy channel, the board edited longest ago goes first.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from bot.clock import Clock
from bot.outbox import Outgoing, RetryLater, Sink
from storage import repo
from storage.db import unit_of_work
from storage.models import OutboxMessage, Run

log = logging.getLogger(__name__)
POSTS = ("post", "ephemeral")
EDIT_TURN_MEMORY = timedelta(hours=1)  # how far back a board's last edit counts for its turn


@dataclass(frozen=True)
class Queued:
    """What `choose` needs to know about one unsent message."""

    id: int
    run_id: int | None
    channel: str | None
    kind: str
    status: str  # pending | sending
    not_before: datetime
    key: str | None = None


@dataclass(frozen=True)
class Recent:
    """When the latest posts (by channel) and edits (by run, and by channel) were delivered."""

    posts: Mapping[str | None, datetime] = field(default_factory=dict)
    edits: Mapping[int | None, datetime] = field(default_factory=dict)
    edit_channels: Mapping[str | None, datetime] = field(default_factory=dict)


@dataclass(frozen=True)
class Choice:
    """Messages to claim now, and older edits that newer ones replace."""

    send: tuple[int, ...]
    superseded: tuple[int, ...]


def choose(queue: Sequence[Queued], *, now: datetime, recent: Recent,
           has_plan_message: Mapping[int, bool], min_interval: timedelta,
           edit_interval: timedelta, limit: int = 10) -> Choice:
    """Decide which queued messages may be sent now, keeping order and pace."""
    in_flight = [q for q in queue if q.status == "sending" and q.not_before > now]
    busy_channels = {q.channel for q in in_flight if q.kind == "post"}
    busy_channels |= {c for c, at in recent.posts.items() if now - at < min_interval}
    send: list[int] = []
    lanes_seen: set[object] = set()
    for q in (q for q in queue if q.kind in POSTS):
        lane = q.run_id if q.run_id is not None else ("channel", q.channel)
        if lane in lanes_seen:
            continue  # an older message of this lane is still unsent: wait for it
        lanes_seen.add(lane)
        if q.not_before > now or (q.kind == "post" and q.channel in busy_channels):
            continue
        send.append(q.id)
        if q.kind == "post":
            busy_channels.add(q.channel)
    superseded: list[int] = []
    never = datetime.min.replace(tzinfo=now.tzinfo)
    # Edits take the channel's pace only where posts leave it free (see the module docstring).
    edit_busy = busy_channels | {q.channel for q in in_flight if q.kind == "update"}
    edit_busy |= {c for c, at in recent.edit_channels.items() if now - at < min_interval}
    candidates: list[tuple[datetime, int, Queued]] = []
    for run_id, edits in _edits_by_run(queue).items():
        newest = edits[-1]
        superseded += [e.id for e in edits[:-1] if e.status == "pending"]
        waiting_post = any(q.run_id == run_id and q.kind == "post" and q.key
                           and q.key.endswith(":plan") for q in queue)
        if (any(e.status == "sending" and e.not_before > now for e in edits)
                or newest.not_before > now
                or (waiting_post and not (run_id is not None
                                          and has_plan_message.get(run_id, False)))
                or now - recent.edits.get(run_id, never) < edit_interval):
            continue
        candidates.append((recent.edits.get(run_id, never), edits[0].id, newest))
    edits_sent: list[int] = []
    for _, _, newest in sorted(candidates, key=lambda c: (c[0], c[1])):
        if newest.channel not in edit_busy:
            edits_sent.append(newest.id)
            edit_busy.add(newest.channel)
    # Posts first: a slow chat.update never delays a thread reply of the same round.
    return Choice(tuple([*sorted(send), *sorted(edits_sent)][:limit]), tuple(superseded))


def _edits_by_run(queue: Iterable[Queued]) -> dict[int | None, list[Queued]]:
    edits: dict[int | None, list[Queued]] = {}
    for q in queue:
        if q.kind == "update":
            edits.setdefault(q.run_id, []).append(q)
    return edits


@dataclass(frozen=True)
class _Claim:
    message: Outgoing
    attempt: int
    run_id: int | None
    key: str | None


class Delivery:
    """Drains the outbox into a sink, safely shared by several processes."""

    def __init__(self, sessions: sessionmaker[Session], sink: Sink, *, clock: Clock,
                 min_interval_s: float = 1.0, edit_interval_s: float = 3.0,
                 lease_s: float = 60.0, owner: str | None = None) -> None:
        self.sessions = sessions
        self.sink = sink
        self.clock = clock
        self.min_interval = timedelta(seconds=min_interval_s)
        self.edit_interval = timedelta(seconds=edit_interval_s)
        self.lease = timedelta(seconds=lease_s)
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"

    def deliver(self, rounds: int = 20) -> int:
        """Send what may go now, round after round until nothing more may; return how many."""
        sent = 0
        for _ in range(rounds):
            claims = self._claim()
            if not claims:
                break
            sent += sum(self._send(claim) for claim in claims)
        return sent

    def _claim(self) -> list[_Claim]:
        now = self.clock.now()
        with unit_of_work(self.sessions) as session:
            repo.lock_outbox(session=session)
            rows = repo.unsent_messages(session=session)
            if not rows:
                return []
            runs = {r.run_id: session.get(Run, r.run_id) for r in rows if r.run_id is not None}
            choice = choose([_queued(r) for r in rows], now=now,
                            recent=self._recent(session, now, rows),
                            has_plan_message={i: bool(r and r.message_ts) for i, r in runs.items()},
                            min_interval=self.min_interval, edit_interval=self.edit_interval)
            repo.supersede_messages(session=session, ids=choice.superseded)
            by_id = {r.id: r for r in rows}
            claims = []
            for message_id in choice.send:
                attempt = repo.claim_message(session=session, message_id=message_id,
                                             lease_until=now + self.lease)
                if attempt is not None:
                    row = by_id[message_id]
                    run = runs.get(row.run_id) if row.run_id is not None else None
                    claims.append(_Claim(_outgoing(row, run), attempt, row.run_id, row.key))
            return claims

    def _recent(self, session: Session, now: datetime, rows: Sequence[OutboxMessage]
                ) -> Recent:
        since = now - max(self.min_interval, self.edit_interval)
        posts: dict[str | None, datetime] = {}
        edits: dict[int | None, datetime] = {}
        edit_channels: dict[str | None, datetime] = {}
        for channel, _run, at in repo.last_sent(session=session, kind="post", since=since):
            posts[channel] = max(at, posts.get(channel, at))
        for channel, run_id, at in repo.last_sent(session=session, kind="update", since=since):
            edits[run_id] = max(at, edits.get(run_id, at))
            edit_channels[channel] = max(at, edit_channels.get(channel, at))
        # Older edits too, for the runs with one waiting: the board edited longest ago goes first.
        waiting = {r.run_id for r in rows if r.kind == "update" and r.run_id is not None}
        for run_id, at in repo.last_edited(session=session, run_ids=waiting - set(edits),
                                           since=now - EDIT_TURN_MEMORY).items():
            edits[run_id] = at
        return Recent(posts, edits, edit_channels)

    def _send(self, claim: _Claim) -> int:
        try:
            ts = self.sink.send(claim.message)
        except RetryLater as exc:
            self._settle(claim, "pending", error=exc.reason,
                         not_before=self.clock.now() + timedelta(seconds=max(exc.seconds, 1.0)))
            log.info("message %s delayed %.0f s: %s", claim.message.id, exc.seconds, exc.reason)
            return 0
        except Exception as exc:  # a sink bug must not lose the message nor stop delivery
            log.exception("sink failed on message %s", claim.message.id)
            self._settle(claim, "pending", error=f"{type(exc).__name__}",
                         not_before=self.clock.now() + timedelta(seconds=30))
            return 0
        self._settle(claim, "sent", ts=ts)
        return 1

    def _settle(self, claim: _Claim, status: str, *, ts: str | None = None,
                error: str | None = None, not_before: datetime | None = None) -> None:
        now = self.clock.now()
        with unit_of_work(self.sessions) as session:
            kept = repo.settle_message(session=session, message_id=claim.message.id,
                                       attempt=claim.attempt, status=status, at=now,
                                       not_before=not_before, slack_ts=ts, error=error)
            if not kept:
                log.warning("message %s: its claim expired and was taken over; this delivery's "
                            "outcome (%s) is not recorded", claim.message.id, status)
            elif status == "sent" and ts and claim.run_id is not None \
                    and claim.key == f"{claim.run_id}:plan":
                repo.set_message_ts(session=session, run_id=claim.run_id, ts=ts)


def _queued(row: OutboxMessage) -> Queued:
    return Queued(id=row.id, run_id=row.run_id, channel=row.channel, kind=row.kind,
                  status=row.status, not_before=row.not_before, key=row.key)


def _outgoing(row: OutboxMessage, run: Run | None) -> Outgoing:
    return Outgoing(id=row.id, kind=row.kind, channel=row.channel,
                    run_name=run.name if run else None,
                    thread_ts=run.message_ts if run else None, thread=row.thread,
                    payload=dict(row.payload))
