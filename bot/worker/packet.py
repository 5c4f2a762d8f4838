"""What the escalation packet needs read off the clusters at the moment of an escalation.

Read once, when a step escalates, and kept with the escalation: each server of the cluster (as
reported now, or as last seen before the install when it does not answer) and the service
impact as any member of the target reports it. A cluster that does not answer is said so; the
packet is never held back by a read that fails.
"""

from __future__ import annotations

import logging
from typing import Any

from bot.dma.errors import DmaError
from bot.dma.models import HaStatus, Member, SuperclusterView, Territory
from bot.engine.impact import service_impact
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
    silent: set[str] = set()
    if name:
        try:
            packet["servers"] = servers_of(ctx.client().ha_status())
            packet["servers_as_of"] = ctx.stamp()
            packet["cluster_sha1"] = ctx.client().installed_software().sha1
        except DmaError as exc:
            silent.add(name)
            packet["servers_error"] = getattr(exc, "reason", None) or str(exc)[:200]
            seen = ctx.step_data.get(f"install:{name}", {})
            packet["servers"] = seen.get("servers_seen", [])
            packet["servers_as_of"] = seen.get("apply_at")
    clusters = [c for c, _ in ctx.plan.from_versions]
    others = [c for c in clusters if c not in silent]
    view, territories = _view(ctx, others, silent)
    superclustered = ctx.plan.target_kind == "supercluster" or bool(
        view and any(m.status != "STANDALONE" for m in view.clusters))
    packet["impact"] = service_impact(
        clusters=clusters, view=view, territories=territories, silent=silent,
        superclustered=superclustered).to_json()
    return packet


def _view(ctx: StepContext, ask: list[str],
          silent: set[str]) -> tuple[SuperclusterView | None, tuple[Territory, ...]]:
    """Merge every cluster's answer (a stand-alone one lists only itself), territories too.

    Territories come from the first cluster that gives them; clusters that do not answer are
    added to `silent`.
    """
    members: dict[str, Member] = {}
    territories: tuple[Territory, ...] | None = None
    for cluster in ask:
        try:
            client = ctx.client(cluster)
            view = client.supercluster()
            if territories is None:
                territories = client.territories()
        except DmaError as exc:
            log.info("escalation packet: %s did not answer (%s)", cluster, exc)
            silent.add(cluster)
            continue
        for member in view.clusters:  # a cluster's word about itself wins
            if member.cluster_id == cluster or member.cluster_id not in members:
                members[member.cluster_id] = member
    if not members:
        return None, ()
    return SuperclusterView(tuple(members.values())), territories or ()
