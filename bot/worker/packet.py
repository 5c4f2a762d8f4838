"""What the escalation packet needs read off the clusters at the moment of an escalation.

Read once, when a step escalates, and kept with the escalation: each server of the cluster (as
reported now, or as last seen before the install when it does not answer) and the service
impact (`bot.runs.readings.impact_now`: every cluster of the run, each supercluster's
territories). A cluster that does not answer is said so; the packet is never held back by a
read that fails.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from bot.dma.errors import DmaError
from bot.dma.models import HaStatus
from bot.engine.impact import ServiceImpact
from bot.runs.outcome import Outcome
from bot.runs.readings import impact_now
from bot.worker.context import StepContext

log = logging.getLogger(__name__)


def servers_of(ha: HaStatus) -> list[dict[str, Any]]:
    """The servers as the packet shows them (host name, address, state, version, serial)."""
    return [{"node": n.node_id, "host": n.host_name, "address": n.address, "state": n.state,
             "version": n.package_version, "serial": n.serial} for n in ha.nodes]


def seen_servers(ctx: StepContext) -> list[dict[str, Any]]:
    """Read the cluster's servers before an install (kept for a packet); empty when it fails."""
    try:
        return servers_of(ctx.client().ha_status())
    except DmaError:
        return []


def read_packet(ctx: StepContext) -> dict[str, Any]:
    """Read the servers, the uploaded package's SHA-1 and the service impact for the packet."""
    name = ctx.cluster or ""
    packet: dict[str, Any] = {"read_at": ctx.stamp()}
    if name:
        try:
            packet["servers"] = servers_of(ctx.client().ha_status())
            packet["servers_as_of"] = ctx.stamp()
            packet["cluster_sha1"] = ctx.client().installed_software().sha1
        except DmaError as exc:
            packet["servers_error"] = getattr(exc, "reason", None) or str(exc)[:200]
            seen = ctx.step_data.get(f"install:{name}", {})
            packet["servers"] = seen.get("servers_seen", [])
            packet["servers_as_of"] = seen.get("apply_at")
    names = dict.fromkeys([*(n for n, _ in ctx.plan.from_versions), *ctx.plan.order])
    servers = {n: ctx.inventory[n].servers if n in ctx.inventory else 2 for n in names}
    try:
        impact = impact_now(ctx.client_for, servers,
                            superclustered=ctx.plan.target_kind == "supercluster")
    except Exception:  # the escalation itself must never be lost to this extra read
        log.exception("could not read the service impact for %s", ctx.key)
        impact = ServiceImpact(known=False)
    packet["impact"] = impact.to_json()
    return packet


def with_packet(ctx: StepContext, outcome: Outcome) -> Outcome:
    """Add the packet to an escalation's details; a read that breaks never loses the escalation."""
    try:
        packet = read_packet(ctx)
    except Exception:  # the escalation itself matters more than anything read for it
        log.exception("could not read the escalation packet for %s", ctx.key)
        packet = {"read_at": ctx.stamp(), "impact": ServiceImpact(known=False).to_json()}
    return replace(outcome, details={**outcome.details, "packet": packet})
