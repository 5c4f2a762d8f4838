"""The state-changing requests of the simulated DMA, each enforcing the vendor's rules (409s)."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import datetime
from typing import Any

from bot.dma.errors import DmaBadResponse
from bot.dma.models import Compatibility, Member, OperationStatus, Territory
from bot.simulator.kinds import FaultKind, compatible
from bot.simulator.state import (
    BUSIED_OUT,
    IN_SERVICE,
    JOIN,
    LEAVE,
    OUT_OF_SERVICE,
    ROLLBACK,
    SERVICE_STATUSES,
    UPGRADE,
    ClusterState,
    Operation,
    Package,
    Refused,
    Revision,
)
from bot.simulator.world import World

MAX_MEMBERS = 5
MAX_ROOM_HOSTS = 3
PACKAGE_MAGIC = b"DMA-PACKAGE "


def _others(world: World, c: ClusterState) -> list[str]:
    return [n for n in world.sc_of(c).members if n != c.name]


def _idle(c: ClusterState) -> None:
    # Only a join's first half leaves the API answering while an operation runs.
    if c.op is not None:
        raise Refused(409, f"a {c.op.kind.lower()} operation is in progress on {c.name}")


# --- software -------------------------------------------------------------------------------


def upload_url(world: World, c: ClusterState, body: Any, now: datetime) -> OperationStatus:
    """Start fetching a package by URL; it shows as upgradeVersion after upload_minutes."""
    url = body.get("url") if isinstance(body, dict) else None
    sha1 = body.get("sha1") if isinstance(body, dict) else None
    if not isinstance(url, str) or not url or not isinstance(sha1, str | None):
        raise Refused(400, 'the body must be {"url": "<package URL>", "sha1": "<hex>"} '
                      "(sha1 optional)")
    version = world.packages.get(url)
    if version is None:
        known = ", ".join(sorted(world.packages)) or "none"
        raise Refused(400, f"unknown package {url}: the simulator cannot tell which version it "
                      f"contains (known packages: {known})")
    c.package = Package(version, sha1, now + world.span(world.timings.upload_minutes))
    return OperationStatus("UPLOAD", 0, message=f"fetching the upgrade package from {url}")


def upload_bytes(c: ClusterState, data: bytes, now: datetime) -> None:
    """Take an uploaded package file: its first line is `DMA-PACKAGE <version>`."""
    first = data.split(b"\n", 1)[0]
    version = first[len(PACKAGE_MAGIC):].decode("utf-8", "replace").strip()
    if not first.startswith(PACKAGE_MAGIC) or not version:
        raise Refused(400, "not a DMA upgrade package: a simulated package starts with "
                      "'DMA-PACKAGE <version>' on its first line")
    c.package = Package(version, hashlib.sha1(data).hexdigest(), now)


def apply_package(world: World, c: ClusterState, user: str, now: datetime) -> OperationStatus:
    """Start installing the uploaded package on both servers; the cluster restarts."""
    _idle(c)
    pkg = c.package
    if pkg is None:
        raise Refused(409, f"no upgrade package is uploaded to {c.name}: upload one before "
                      "applying it")
    if pkg.ready_at > now:
        raise Refused(409, "the upgrade package is still being fetched: wait until "
                      "upgradeVersion shows it")
    bad = [o for o in _others(world, c) if not compatible(pkg.version, world.clusters[o].version)]
    if bad:
        theirs = ", ".join(f"{o} runs {world.clusters[o].version}" for o in bad)
        raise Refused(409, f"{c.name} is a member of a supercluster ({theirs}) and {pkg.version} "
                      "is not compatible (different major or minor version): a cluster must "
                      "leave the supercluster before an incompatible upgrade")
    if c.service == IN_SERVICE or world.calls(c, now):
        # A real DMA takes it; the guide does not ("except in an emergency"): tests read this.
        world.breaches.append(f"{now.isoformat()} install on {c.name} while {c.service} with "
                              f"{world.calls(c, now)} active calls")
    slow = c.fault(FaultKind.SLOW_INSTALL)
    minutes = c.estimate * (slow.factor if slow else 1.0)
    c.op = Operation(UPGRADE, now, now, now + world.span(minutes), user, pkg.version)
    return OperationStatus(UPGRADE, 0, message=f"upgrade to {pkg.version} starting")


def rollback(world: World, c: ClusterState, user: str, now: datetime) -> OperationStatus:
    """Start restoring the version before the last upgrade; the cluster restarts."""
    _idle(c)
    if c.rollback_version is None:
        raise Refused(409, f"nothing to roll back on {c.name}: only the last upgrade can be "
                      "rolled back and there is none")
    if _others(world, c):
        raise Refused(409, f"{c.name} is a supercluster member: reassign its territories, take "
                      "it out of service and remove it from the supercluster before rolling back")
    end = now + world.span(world.timings.rollback_minutes)
    c.op = Operation(ROLLBACK, now, now, end, user, c.rollback_version)
    return OperationStatus(ROLLBACK, 0, message=f"rollback to {c.rollback_version} starting")


# --- supercluster ---------------------------------------------------------------------------


def check_compatibility(c: ClusterState, version: str | None) -> Compatibility:
    """Say whether a cluster running `version` may join this cluster's supercluster."""
    if not version:
        raise Refused(400, "the dmaVersion query parameter is required")
    if compatible(version, c.version):
        return Compatibility(True, f"{version} is compatible with {c.version}")
    return Compatibility(False, f"{version} is not compatible with {c.version}: the major and "
                         "minor versions must be equal")


def _initial_host(body: Any) -> str:
    hosts = body.get("initialHost") if isinstance(body, dict) else None
    first = hosts[0] if isinstance(hosts, list) and hosts else None
    fqdn = first.get("fqdn") if isinstance(first, dict) else None
    if not isinstance(fqdn, str) or not fqdn:
        raise Refused(400, 'the body must be {"initialHost": [{"fqdn": "<host>", "port": <n>}], '
                      '"dmaVersion": "<version>"}')
    return fqdn


def join(world: World, c: ClusterState, body: Any, now: datetime) -> OperationStatus:
    """Start joining this cluster to the supercluster of `initialHost`; it then restarts."""
    fqdn = _initial_host(body)
    target = next((t for t in world.clusters.values()
                   if t.host_name.lower() == fqdn.lower()), None)
    if target is None:
        raise Refused(409, f"no DMA cluster answers at {fqdn}")
    _check_join(world, c, target, fqdn, now)
    total = world.span(world.timings.join_minutes)
    # The shared data is copied first (the API still answers and reports progress), then the
    # joining cluster's services restart for the second half of the join.
    c.op = Operation(JOIN, now, now + total / 2, now + total, target_sc=target.sc)
    c.sc_result = None
    return OperationStatus(JOIN, 0, "IN_PROGRESS", f"{c.name} is joining through {fqdn}")


def _check_join(world: World, c: ClusterState, target: ClusterState, fqdn: str,
                now: datetime) -> None:
    sc = world.sc_of(target)
    if target is c:
        raise Refused(409, f"{fqdn} is this cluster: join another cluster")
    if others := _others(world, c):
        raise Refused(409, f"{c.name} is already a member of a supercluster with "
                      f"{', '.join(others)}: remove it from that supercluster first")
    _idle(c)
    if world.joiners(world.sc_of(c)):
        raise Refused(409, f"another cluster is joining {c.name}: wait until it has joined")
    if world.restarting(target, now):
        raise Refused(409, f"{target.name} ({fqdn}) is restarting: wait until it is up")
    if world.joiners(sc):
        raise Refused(409, "another cluster is joining that supercluster: join one at a time")
    if target.rolled_back and len(sc.members) == 1 and not c.rolled_back:
        raise Refused(409, f"{target.name} was rolled back: its data is the backup restored by "
                      f"the rollback, and a joining cluster's data is replaced by the target's. "
                      f"Join {target.name} to {c.name}, never {c.name} to {target.name}")
    if len(sc.members) >= MAX_MEMBERS:
        raise Refused(409, f"a supercluster has at most {MAX_MEMBERS} clusters")
    if not compatible(c.version, target.version):
        raise Refused(409, f"{c.name} runs {c.version} and the supercluster of {target.name} runs "
                      f"{target.version}: versions are not compatible (the major and minor "
                      "versions must be equal)")


def leave(world: World, c: ClusterState, cluster_id: str, now: datetime) -> OperationStatus:
    """Start removing a member from this cluster's supercluster; it restarts stand-alone."""
    sc = world.sc_of(c)
    if cluster_id not in sc.members:
        raise Refused(409, f"{cluster_id} is not a member of this supercluster")
    if len(sc.members) < 2:
        raise Refused(409, f"{cluster_id} is stand-alone: there is no supercluster to leave")
    x = world.clusters[cluster_id]
    if world.restarting(x, now):
        raise Refused(409, f"{cluster_id} is restarting: a cluster can only be removed while "
                      "its servers are online")
    held = [t.territory_id for t in world.territories(sc, now)
            if cluster_id in (t.primary, t.backup)]
    if held:
        raise Refused(409, f"{cluster_id} is the primary or backup of territories "
                      f"{', '.join(held)}: reassign them (and wait for replication) first")
    if x.service == IN_SERVICE:
        raise Refused(409, f"{cluster_id} is IN_SERVICE: busy it out or take it out of service "
                      "before removing it")
    if calls := world.calls(x, now):
        raise Refused(409, f"{cluster_id} has {calls} active calls: wait for them to end")
    x.op = Operation(LEAVE, now, now, now + world.span(world.timings.leave_minutes))
    x.sc_result = None
    return OperationStatus(LEAVE, 0, "IN_PROGRESS", f"{cluster_id} is leaving the supercluster")


def operation_status(c: ClusterState, now: datetime) -> OperationStatus:
    """Return the progress of this cluster's join or leave, or how the last one ended."""
    op = c.op
    if op is not None and op.kind in (JOIN, LEAVE):
        done = (now - op.start) / (op.end - op.start) if op.end > op.start else 1.0
        return OperationStatus(op.kind, min(99, int(done * 100)), "IN_PROGRESS",
                               f"{op.kind.lower()} in progress")
    if c.sc_result is None:
        raise Refused(404, f"no supercluster operation has run on {c.name}")
    r = c.sc_result
    return OperationStatus(r.kind, 100, r.state, r.message)


def set_service(world: World, c: ClusterState, cluster_id: str, body: Any,
                now: datetime) -> Member:
    """Set a member's service status; busied-out calls drain, out-of-service calls drop."""
    wanted = body.get("serviceStatus") if isinstance(body, dict) else None
    if wanted not in SERVICE_STATUSES:
        raise Refused(400, f"serviceStatus must be one of {', '.join(SERVICE_STATUSES)}")
    if cluster_id not in world.sc_of(c).members:
        raise Refused(409, f"{cluster_id} is not a member of this supercluster")
    x = world.clusters[cluster_id]
    if world.restarting(x, now):
        raise Refused(409, f"{cluster_id} is restarting: wait until it is up")
    x.calls, x.drain_from = world.calls(x, now), None
    if wanted == BUSIED_OUT:
        slow = x.fault(FaultKind.SLOW_DRAIN)
        x.drain_from = now
        x.drain_span = world.span(slow.minutes if slow else world.timings.drain_minutes)
    elif wanted == OUT_OF_SERVICE:
        x.calls = 0
    x.service = wanted
    return world.member(x)


# --- territories ----------------------------------------------------------------------------


def put_territory(world: World, c: ClusterState, territory_id: str, body: Any,
                  if_match: str | None, now: datetime) -> Territory:
    """Change a territory; GETs show the change after replication_seconds."""
    sc = world.sc_of(c)
    revisions = sc.territories.get(territory_id)
    if revisions is None:
        raise Refused(404, f"no territory {territory_id} in this supercluster")
    current = revisions[-1].territory
    tag = (if_match or "").strip().removeprefix("W/").strip('"')
    if not tag:
        raise Refused(412, "If-Match is required: send the territory's entityTag")
    if tag != current.entity_tag:
        raise Refused(412, f"stale entity tag {tag}: the territory changed since it was read")
    new = _parse_territory(body, territory_id)
    _check_nodes(world, c, new, now)
    new = replace(new, active=None, entity_tag=world.new_tag())
    # Keep the revision GETs show now and the ones still replicating; drop older ones.
    shown = max(i for i, r in enumerate(revisions) if r.visible_at <= now)
    delay = world.span(world.timings.replication_seconds / 60.0)
    sc.territories[territory_id] = [*revisions[shown:], Revision(now + delay, new)]
    return world.with_active(sc, new, now)


def _parse_territory(body: Any, territory_id: str) -> Territory:
    try:
        new = Territory.from_json(body)
    except DmaBadResponse as exc:
        raise Refused(400, f"bad territory: {exc.message}") from None
    if new.territory_id != territory_id:
        raise Refused(400, f"territoryIdentifier {new.territory_id} does not match the path "
                      f"({territory_id})")
    return new


def _check_nodes(world: World, c: ClusterState, new: Territory, now: datetime) -> None:
    sc = world.sc_of(c)
    for node in (new.primary, new.backup):
        if node is None:
            continue
        x = world.clusters.get(node)
        leaving = x is not None and x.op is not None and x.op.kind == LEAVE
        if node not in sc.members or leaving:
            raise Refused(409, f"{node} is not a cluster of this supercluster")
    if new.primary is not None and new.primary == new.backup:
        raise Refused(409, "the primary and the backup of a territory must be different clusters")
    if new.conference_room_host and new.primary is not None:
        hosts = {t.primary for t in world.territories(sc, now)
                 if t.conference_room_host and t.primary and t.territory_id != new.territory_id}
        if new.primary not in hosts and len(hosts) >= MAX_ROOM_HOSTS:
            raise Refused(409, f"at most {MAX_ROOM_HOSTS} clusters of a supercluster may host "
                          "conference rooms")
