"""The escalation packet: everything Polycom Global Services asks first, in one thread reply.

The condition in the vendor's words once, then what was measured; the cluster, the versions,
each server, absolute times in the run's zone, the package, what was already done on that
cluster, the service impact now and the ways on. Broadcast to the channel, with Acknowledge.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from bot.engine.durations import say_duration
from bot.engine.impact import ServiceImpact
from bot.engine.verification import CONDITION_TEXT, VENDOR_CONDITIONS, Condition
from bot.messages import layouts
from bot.messages.blocks import Block, context, divider, fields, header, section, sections
from bot.messages.common import Payload, mention

VENDOR_LABEL = "Vendor condition (guide, 'Call Polycom Global Services if')"


@dataclass(frozen=True)
class PacketServer:
    """One server of the escalated cluster, as reported (None: not reported)."""

    node: int | None
    host: str
    address: str | None
    state: str
    version: str | None
    serial: str | None

    def line(self) -> str:
        """The server as one line."""
        where = f" ({self.address})" if self.address else ""
        serial = f", serial {self.serial}" if self.serial else ", serial not reported"
        return (f"server {self.node} {self.host}{where}: {self.state}, package "
                f"{self.version or 'unknown'}{serial}")


@dataclass(frozen=True)
class EscalationPacket:
    """What an escalation says, as values (stored with the escalation, rendered here)."""

    run_name: str
    cluster: str
    condition: str
    facts: tuple[str, ...]
    from_version: str | None
    to_version: str
    servers: tuple[PacketServer, ...]
    servers_note: str
    tz: str
    install_sent: datetime | None
    last_answer_at: datetime | None
    last_answer: str
    now: datetime
    estimate_min: float | None
    waited_min: float | None
    package_file: str | None
    sha1: str | None
    done: tuple[tuple[datetime | None, str], ...]
    impact: ServiceImpact
    contact: str
    notify: tuple[str, ...]
    step_id: int | None = None  # the escalated step: its Roll back button names it
    sent_what: str = "install"  # or "rollback", for an escalated rollback run

    @property
    def vendor(self) -> bool:
        """True for one of the guide's three conditions."""
        return self.condition in {c.value for c in VENDOR_CONDITIONS}

    def clock(self, at: datetime | None) -> str:
        """An absolute time in the run's zone, e.g. 2026-11-28 02:05 CST."""
        if at is None:
            return "not known"
        return at.astimezone(ZoneInfo(self.tz)).strftime("%Y-%m-%d %H:%M %Z")

    def to_json(self) -> dict[str, Any]:
        """The stored form (evidence, re-notifications)."""
        def iso(at: datetime | None) -> str | None:
            return at.isoformat() if at else None
        return {"run": self.run_name, "cluster": self.cluster, "condition": self.condition,
                "condition_text": condition_text(self.condition), "facts": list(self.facts),
                "from_version": self.from_version, "to_version": self.to_version,
                "servers": [vars(s) for s in self.servers], "servers_note": self.servers_note,
                "tz": self.tz, "install_sent": iso(self.install_sent),
                "last_answer_at": iso(self.last_answer_at), "last_answer": self.last_answer,
                "now": iso(self.now), "estimate_min": self.estimate_min,
                "waited_min": self.waited_min, "package_file": self.package_file,
                "sha1": self.sha1, "done": [[iso(at), what] for at, what in self.done],
                "impact": self.impact.to_json(), "contact": self.contact,
                "notify": list(self.notify), "step_id": self.step_id,
                "sent_what": self.sent_what}


# How the DMA client's reasons for "not reachable yet" read in a packet.
_SAID = {"refused": "connection refused", "timeout": "no answer (timed out)",
         "unavailable": "HTTP 503, service unavailable", "dropped": "connection dropped",
         "unauthorized": "HTTP 401, cannot log in yet"}


def said(reason: str) -> str:
    """A reason of the DMA client in words."""
    return _SAID.get(reason, reason)


def condition_text(condition: str) -> str:
    """The vendor's (or the bot's) words for a condition."""
    try:
        return CONDITION_TEXT[Condition(condition)]
    except ValueError:
        return condition


def ways_on(run_name: str, cluster: str | None = None, *, aborted: bool = False) -> list[str]:
    """The commands that take a stopped run on (an aborted run: rollback and restore only)."""
    which = cluster or "CLUSTER"
    ways = [] if aborted else [
        f"`/upgrade retry {run_name}` once the cause is dealt with (verifies again)"]
    ways += [f"`/upgrade rollback {run_name} {which}` (the vendor's rollback of "
             f"{cluster or 'one cluster'}: only the last upgrade can be undone, out of the "
             "supercluster first; approval needed)",
             f"`/upgrade restore {run_name}` (plan the way back to a served network)"]
    if not aborted:
        ways.append(f"`/upgrade abort {run_name}` (clusters stay as they are now)")
    return ways


def _times(p: EscalationPacket) -> list[str]:
    rows = [f"{p.sent_what} sent {p.clock(p.install_sent)}",
            f"last answer {p.clock(p.last_answer_at)}"
            + (f" ({p.last_answer})" if p.last_answer else ""),
            f"now {p.clock(p.now)}"]
    if p.estimate_min is not None:
        rows.append(f"install estimate {say_duration(p.estimate_min * 60)}")
    if p.waited_min is not None:
        rows.append(f"waited {say_duration(p.waited_min * 60)}")
    return rows


def escalation_message(p: EscalationPacket) -> Payload:
    """The escalation packet as a thread reply broadcast to the channel."""
    label = (VENDOR_LABEL if p.vendor
             else "The bot's own check failed (not one of the vendor's three conditions)")
    call = (f"🚨 {p.run_name} — escalation on *{p.cluster}*: call {p.contact}."
            + (f" {' '.join(mention(n) for n in p.notify)}" if p.notify else ""))
    versions = f"{p.from_version or 'unknown'} → {p.to_version}"
    servers = [s.line() for s in p.servers] or ["no server reported"]
    package = (f"{p.package_file or 'not configured'}, SHA-1 "
               f"{p.sha1 or 'not given in the config nor reported by the cluster'}")
    done = [f"{i}. {p.clock(at)} — {what}" for i, (at, what) in enumerate(p.done, 1)] or [
        "nothing yet"]
    ways = ways_on(p.run_name, p.cluster)
    rows = [call, f"{label}: {condition_text(p.condition)}",
            *(f"Measured: {f}" for f in p.facts),
            f"Cluster: {p.cluster}, upgrade {versions}",
            f"Servers ({p.servers_note}):", *(f"  {s}" for s in servers),
            f"Times ({p.tz}): " + "; ".join(_times(p)), f"Package: {package}",
            f"Already done on {p.cluster}, in order:", *(f"  {d}" for d in done),
            "Service impact now: " + "; ".join(p.impact.lines()),
            "The run is paused; nothing else is touched. Ways on: " + " · ".join(ways)]
    blocks: list[Block] = [
        header(f"🚨 {p.run_name} — escalation on {p.cluster}"), section(call),
        section(f"*{label}*\n>{condition_text(p.condition)}"
                + "".join(f"\n• {f}" for f in p.facts)),
        fields([("Cluster", p.cluster), ("Upgrade", versions), ("Package", package),
                (f"Times ({p.tz})", "\n".join(_times(p)))]),
        *sections(f"*Servers* ({p.servers_note})\n" + "\n".join(servers)),
        *sections(f"*Already done on {p.cluster}, in order*\n" + "\n".join(done)),
        *sections("*Service impact now*\n" + "\n".join(p.impact.lines())),
        divider(), *sections("*Ways on* (the run is paused; nothing else is touched)\n"
                             + "\n".join(f"• {w}" for w in ways)),
        context("Acknowledge tells the channel someone has it (on-call, operators, approvers); "
                "until then the on-call group is mentioned again in this thread."),
        *layouts.buttons(p.run_name, ("acknowledge", "retry", "abort")),
        *layouts.rollback_button(p.run_name, p.step_id, p.cluster)]
    return {"text": "\n".join(rows), "blocks": blocks, "reply_broadcast": True}


def renotify_message(run_name: str, cluster: str, *, notify: Sequence[str], contact: str,
                     waiting: str) -> Payload:
    """The on-call group mentioned again while nobody has acknowledged an escalation."""
    who = " ".join(mention(n) for n in notify) or "on-call"
    text = (f"🔔 {run_name} — the escalation on *{cluster}* is not acknowledged after "
            f"{waiting}: {who}, call {contact} and press Acknowledge.")
    return {"text": text, "blocks": [section(text), *layouts.buttons(run_name, ("acknowledge",))]}


def acknowledged_message(run_name: str, cluster: str, *, user: str, at: str) -> Payload:
    """A thread reply saying who acknowledged the escalation and when."""
    text = f"👀 {run_name} — escalation on *{cluster}* acknowledged by {mention(user)} at {at}."
    return {"text": text, "blocks": [section(text)]}


def overdue_message(run_name: str, cluster: str, late: Mapping[str, float]) -> Payload:
    """The one note between a cluster's estimate and its escalation."""
    text = (f"⏰ {run_name} — {cluster} is {say_duration(late['past_min'] * 60)} past its "
            f"{say_duration(late['estimate_min'] * 60)} estimate; escalation at "
            f"{say_duration(late['escalate_at_min'] * 60)} if it still cannot be logged in to.")
    return {"text": text, "blocks": [section(text)]}
