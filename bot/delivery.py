"""Outbox delivery that several bot processes can share one database for, into any sink.

Slack (`bot.slack.sink`), the rehearsal's console and the tests' recorders all go through this
one deliverer. Reading pending rows without a claim would let two processes send every message
twice; here each round first takes a lock that serializes *claiming* across
processes (PostgreSQL: `pg_advisory_xact_lock`; SQLite: its write lock), chooses what may go now,
and marks those rows `sending` with a lease (`not_before` = lease end, `attempts` + 1 as the
claim's token), then commits. Slack is called with no transaction open. The outcome is recorded
only if the row is still `sending` with our token; a process that died mid-send leaves a lease
(short: seconds) that expires, and the row is claimed again.

Exactly once: a post whose earlier try has no known outcome (its lease expired: a crash between
Slack's answer and the commit; or a timeout or a 5xx that may have gone through) is first looked
up in its channel or thread by the outbox id its metadata carries (`FindsSent`), and only sent
when it is not there. A claim is sent only while enough of its lease is left for Slack to answer,
so no other process can take it over mid-send. A 429's Retry-After holds every message of the
same kind (post, edit, ephemeral) to the same channel, not only the one that got it.

What may go now (decided by `choose`, a pure function):
- posts of a run (or, without a run, of a channel) in queue order: only the oldest unsent one,
  and only when no earlier one is in flight; so thread replies keep their order; a file upload
  waits for the posts before it but holds back none after it (drawing it takes a while);
- at most one new post per channel per `min_interval_s`, counting posts in flight and those sent
  recently by any process;
- edits of the plan message (the status board): only the newest one of a run (older ones are
  superseded, so a board is never more than one edit behind), once the plan message exists, at
  most one per run every `edit_interval_s` (chat.update is tier 3), and they share the
  channel's pace: an edit goes only where no post or edit went within `min_interval_s`, none is
  in flight, and no post takes the channel this round. Posts are chosen first and never count
  edits, so a run's thread replies never wait behind another run's board edits; among the runs
  of a busy channel, the board edited longest ago goes first.

A board edit is queued as {BOARD: run id} and drawn by `boards` when it is sent, from the run as
it stands then: the superseded edits are never drawn at all.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from bot.clock import Clock
from bot.outbox import BOARD, FindsSent, Outgoing, RetryLater, Sink
from storage import repo
from storage.db import unit_of_work
from storage.enums import OutboxStatus
from storage.models import OutboxMessage, Run

log = logging.getLogger(__name__)
POSTS = ("post", "ephemeral", "upload")
# What the per-channel pace counts. File uploads are rare (two or three a run) and limited by
# Slack per method, not per channel: a notice never waits for a picture to be drawn.
PACED = ("post",)
EDIT_TURN_MEMORY = timedelta(hours=1)  # how far back a board's last edit counts for its turn
# Draws a run's status board as it stands now (None: the run is gone), for {BOARD: run id} edits.
Boards = Callable[[int], Mapping[str, Any] | None]


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


Blocked = Mapping[tuple[str, str | None], datetime]  # (kind, channel) -> Retry-After's end


def choose(queue: Sequence[Queued], *, now: datetime, recent: Recent,
           has_plan_message: Mapping[int, bool], min_interval: timedelta,
           edit_interval: timedelta, limit: int = 10, blocked: Blocked | None = None) -> Choice:
    """Decide which queued messages may be sent now, keeping order and pace."""
    held = {key for key, until in (blocked or {}).items() if until > now}
    in_flight = [q for q in queue if q.status == "sending" and q.not_before > now]
    busy_channels = {q.channel for q in in_flight if q.kind in PACED}
    busy_channels |= {c for c, at in recent.posts.items() if now - at < min_interval}
    send: list[int] = []
    lanes_seen: set[object] = set()
    for q in (q for q in queue if q.kind in POSTS):
        lane = q.run_id if q.run_id is not None else ("channel", q.channel)
        if lane in lanes_seen:
            continue  # an older message of this lane is still unsent: wait for it
        if q.kind != "upload":
            # A file waits for the messages before it, but holds none back: a notice never
            # waits for a picture to be drawn.
            lanes_seen.add(lane)
        if q.not_before > now or (q.kind in PACED and q.channel in busy_channels) \
                or (q.kind, q.channel) in held:
            continue
        send.append(q.id)
        if q.kind in PACED:
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
                or newest.not_before > now or ("update", newest.channel) in held
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


UNKNOWN = "outcome unknown: "  # last_error prefix: an earlier try may have delivered it


@dataclass(frozen=True)
class _Claim:
    message: Outgoing
    attempt: int
    run_id: int | None
    key: str | None
    lease_until: datetime


class Delivery:
    """Drains the outbox into a sink, safely shared by several processes."""

    def __init__(self, sessions: sessionmaker[Session], sink: Sink, *, clock: Clock,
                 min_interval_s: float = 1.0, edit_interval_s: float = 3.0,
                 lease_s: float = 10.0, send_budget_s: float = 5.0,
                 owner: str | None = None, boards: Boards | None = None) -> None:
        self.sessions = sessions
        self.sink = sink
        self.boards = boards
        self.clock = clock
        self.min_interval = timedelta(seconds=min_interval_s)
        self.edit_interval = timedelta(seconds=edit_interval_s)
        self.lease = timedelta(seconds=lease_s)
        # A send starts only with this much lease left (the Slack client's timeout): no other
        # process may take a message over while this one may still be sending it.
        self.send_budget = timedelta(seconds=min(send_budget_s, lease_s / 2))
        self._blocked: dict[tuple[str, str | None], datetime] = {}  # this process's 429s
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"

    def deliver(self, rounds: int = 20) -> int:
        """Send what may go now, round after round until nothing more may; return how many."""
        sent = 0
        for _ in range(rounds):
            claims = self._claim()
            if not claims:
                break
            # Files last: rendering one takes a while, and the texts beside it must not wait.
            claims.sort(key=lambda claim: claim.message.kind == "upload")
            sent += sum(self._send(claim) for claim in claims)
        return sent

    def _claim(self) -> list[_Claim]:
        now = self.clock.now()
        self._blocked = {key: until for key, until in self._blocked.items() if until > now}
        with unit_of_work(self.sessions) as session:
            repo.lock_outbox(session=session)
            rows = repo.unsent_messages(session=session)
            if not rows:
                return []
            runs = {r.run_id: session.get(Run, r.run_id) for r in rows if r.run_id is not None}
            choice = choose([_queued(r) for r in rows], now=now,
                            recent=self._recent(session, now, rows),
                            has_plan_message={i: bool(r and r.message_ts) for i, r in runs.items()},
                            min_interval=self.min_interval, edit_interval=self.edit_interval,
                            blocked=self._blocked)
            repo.supersede_messages(session=session, ids=choice.superseded)
            by_id = {r.id: r for r in rows}
            claims = []
            for message_id in choice.send:
                row = by_id[message_id]
                uncertain = _uncertain(row)  # read before the claim rewrites the row
                attempt = repo.claim_message(session=session, message_id=message_id,
                                             lease_until=now + self.lease)
                if attempt is not None:
                    run = runs.get(row.run_id) if row.run_id is not None else None
                    claims.append(_Claim(_outgoing(row, run, uncertain), attempt,
                                         row.run_id, row.key, now + self.lease))
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
        message, now = claim.message, self.clock.now()
        if now + self.send_budget > claim.lease_until:  # too late to send under this claim
            self._settle(claim, "pending", error=_error(message.uncertain, "lease ran short"),
                         not_before=now)
            return 0
        uncertain = message.uncertain
        try:
            if uncertain and message.kind == "post" and isinstance(self.sink, FindsSent):
                found = self.sink.find_sent(message)
                if found is not None:
                    log.warning("message %s was posted by an earlier try (found by its outbox "
                                "id); not posting it again", message.id)
                    self._settle(claim, "sent", ts=found)
                    return 1
                uncertain = False  # looked up: it is not there, so it was never posted
            if message.kind == "update" and BOARD in message.payload:
                board = self._draw_board(message)
                if board is None:
                    self._settle(claim, "sent")  # nothing to show: the edit is dropped
                    return 0
                message = replace(message, payload=board)
            ts = self.sink.send(message)
        except RetryLater as exc:
            self._retry_later(claim, exc, uncertain or exc.uncertain)
            return 0
        except Exception as exc:  # a sink bug must not lose the message nor stop delivery
            log.exception("sink failed on message %s", message.id)
            self._settle(claim, "pending", error=_error(True, type(exc).__name__),
                         not_before=self.clock.now() + timedelta(seconds=30))
            return 0
        self._settle(claim, "sent", ts=ts)
        return 1

    def _draw_board(self, message: Outgoing) -> Mapping[str, Any] | None:
        """The board an edit stands for, drawn now; None when there is none to draw."""
        if self.boards is None:
            log.warning("message %s edits a status board this deliverer cannot draw; dropped",
                        message.id)
            return None
        board = self.boards(int(message.payload[BOARD]))
        if board is None:
            log.info("message %s edits the board of a run that is gone; dropped", message.id)
        return board

    def _retry_later(self, claim: _Claim, exc: RetryLater, uncertain: bool) -> None:
        until = self.clock.now() + timedelta(seconds=max(exc.seconds, 1.0))
        if exc.rate_limited:  # Slack's wait holds for this kind of call to this channel
            key = (claim.message.kind, claim.message.channel)
            self._blocked[key] = max(until, self._blocked.get(key, until))
        self._settle(claim, "pending", error=_error(uncertain, exc.reason), not_before=until)
        log.info("message %s delayed %.0f s: %s", claim.message.id, exc.seconds, exc.reason)

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


def _uncertain(row: OutboxMessage) -> bool:
    """An earlier try of this row may have delivered it: its lease expired, or it said so."""
    return row.attempts > 0 and (row.status == OutboxStatus.SENDING
                                 or (row.last_error or "").startswith(UNKNOWN))


def _error(uncertain: bool, reason: str) -> str:
    return f"{UNKNOWN}{reason}" if uncertain else reason


def _outgoing(row: OutboxMessage, run: Run | None, uncertain: bool = False) -> Outgoing:
    return Outgoing(id=row.id, kind=row.kind, channel=row.channel,
                    run_name=run.name if run else None,
                    thread_ts=run.message_ts if run else None, thread=row.thread,
                    payload=dict(row.payload), uncertain=uncertain)
