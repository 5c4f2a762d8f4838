"""The simulated world: clusters and superclusters whose state is computed lazily from the clock.

Nothing runs in the background. A long operation stores when it started and when it ends; every
request or inspection first calls `World.advance(now)`, which finishes the operations that are due
in the order they end. With a FakeClock a test therefore moves time explicitly.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.dma.models import (
    HaStatus,
    InstalledSoftware,
    Member,
    Node,
    SuperclusterView,
    Territory,
    UpgradeRecord,
)
from bot.simulator.kinds import (
    Fault,
    FaultKind,
    SimCluster,
    SimSupercluster,
    SimTerritory,
    SimTimings,
)
from bot.simulator.state import (
    IN_SERVICE,
    JOIN,
    LEAVE,
    ROLLBACK,
    UPGRADE,
    ClusterState,
    Operation,
    Revision,
    ScResult,
    ScState,
    ServerNode,
)

_ALWAYS = datetime.min.replace(tzinfo=UTC)


class World:
    """All simulated clusters and superclusters, and the rules that move them through time."""

    def __init__(self, clusters: Sequence[SimCluster], superclusters: Sequence[SimSupercluster],
                 *, packages: Mapping[str, str], timings: SimTimings, speed: float,
                 seed: int) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.packages = dict(packages)
        self.timings = timings
        self.speed = speed
        self.clusters: dict[str, ClusterState] = {}
        self.scs: dict[int, ScState] = {}
        self._next_key = 0
        self._next_tag = 0
        # Requests a real DMA accepts but the guide forbids (an install with calls up, a
        # territory left unserved during an incremental run): recorded, never refused.
        self.breaches: list[str] = []
        for spec in clusters:
            self._add_cluster(spec, seed)
        for group in superclusters:
            self._add_supercluster(group)

    def _add_cluster(self, spec: SimCluster, seed: int) -> None:
        if spec.name in self.clusters:
            raise ValueError(f"cluster {spec.name} is listed twice")
        sc = self.new_sc(spec.name, [spec.name], [])
        self.clusters[spec.name] = ClusterState(
            name=spec.name, host_name=spec.host_name or "", servers=spec.servers,
            version=spec.version, estimate=spec.estimated_install_minutes,
            registrations=spec.registrations, calls=spec.active_calls, sc=sc.key,
            # A string seed is hashed deterministically, so each cluster has its own stream.
            rng=random.Random(f"{seed}:{spec.name}"),
            nodes=[ServerNode("UP", spec.version) for _ in range(spec.servers)])

    def _add_supercluster(self, group: SimSupercluster) -> None:
        for name in group.members:
            if name not in self.clusters:
                raise ValueError(f"supercluster {group.name}: unknown cluster {name}")
            if len(self.scs[self.clusters[name].sc].members) > 1:
                raise ValueError(f"cluster {name} is in two superclusters")
        for t in group.territories:
            for node in (t.primary, t.backup):
                if node is not None and node not in group.members:
                    raise ValueError(f"territory {t.territory_id}: {node} is not a member of "
                                     f"supercluster {group.name}")
        for name in group.members:
            del self.scs[self.clusters[name].sc]
        sc = self.new_sc(group.name, list(group.members),
                         [self._territory(t) for t in group.territories])
        for name in group.members:
            self.clusters[name].sc = sc.key

    def _territory(self, t: SimTerritory) -> Territory:
        return Territory(territory_id=t.territory_id, name=t.name, primary=t.primary,
                         backup=t.backup, conference_room_host=t.conference_room_host,
                         entity_tag=self.new_tag())

    def new_sc(self, name: str, members: list[str], territories: list[Territory]) -> ScState:
        """Create a supercluster whose territories are all visible at once."""
        self._next_key += 1
        sc = ScState(self._next_key, name, members,
                     {t.territory_id: [Revision(_ALWAYS, t)] for t in territories})
        self.scs[sc.key] = sc
        return sc

    def new_tag(self) -> str:
        """Return a fresh territory entity tag."""
        self._next_tag += 1
        return f"e{self._next_tag}"

    def span(self, minutes: float) -> timedelta:
        """Turn virtual minutes into clock time: every duration is divided by the speed."""
        return timedelta(minutes=minutes / self.speed)

    def cluster(self, name: str) -> ClusterState:
        """Return a cluster by name (KeyError names it)."""
        if name not in self.clusters:
            raise KeyError(f"no simulated cluster named {name!r}")
        return self.clusters[name]

    def sc_of(self, c: ClusterState) -> ScState:
        """Return the supercluster a cluster belongs to."""
        return self.scs[c.sc]

    # --- time ---------------------------------------------------------------------------------

    def hung(self, c: ClusterState) -> bool:
        """True when an install or a rollback never ends because of the never-returns fault."""
        return (c.op is not None and c.op.kind in (UPGRADE, ROLLBACK)
                and c.fault(FaultKind.NEVER_RETURNS) is not None)

    def advance(self, now: datetime) -> None:
        """Finish every operation that has ended by `now`, earliest first."""
        while True:
            due = [c for c in self.clusters.values()
                   if c.op is not None and c.op.end <= now and not self.hung(c)]
            if not due:
                return
            self._finish(min(due, key=lambda c: (c.op.end if c.op else now, c.name)))

    def _finish(self, c: ClusterState) -> None:
        op = c.op
        assert op is not None
        c.op = None
        c.auth_until = op.end + self.span(self.timings.auth_delay_minutes)
        c.calls, c.drain_from = 0, None  # a restart drops every call
        {UPGRADE: self._finish_upgrade, ROLLBACK: self._finish_rollback,
         JOIN: self._finish_join, LEAVE: self._finish_leave}[op.kind](c, op)

    def _finish_upgrade(self, c: ClusterState, op: Operation) -> None:
        if c.fault(FaultKind.INSTALL_NOT_TAKEN):
            return  # it restarted, and nothing changed: the package is still pending
        old, new = c.version, op.to_version
        failed = c.fault(FaultKind.HISTORY_FAILURE) is not None
        status = "UPGRADE_FAILURE" if failed else "UPGRADE_SUCCESSFUL"
        second = old if c.fault(FaultKind.VERSION_MISMATCH) else new
        nodes = [ServerNode("UP", new)]
        if c.servers == 2:
            nodes.append(ServerNode("DOWN" if c.fault(FaultKind.ONE_SERVER) else "UP", second))
        for i, (before, after) in enumerate(zip(c.nodes, nodes, strict=True), start=1):
            c.history.append(UpgradeRecord(i, before.version, after.version, op.user, status,
                                           op.end))
        c.version, c.rollback_version, c.package, c.nodes = new, old, None, nodes
        c.rolled_back = False
        c.ha_connected = c.fault(FaultKind.LINK_DOWN) is None

    def _finish_rollback(self, c: ClusterState, op: Operation) -> None:
        restored = op.to_version
        for i, before in enumerate(c.nodes, start=1):
            c.history.append(UpgradeRecord(i, before.version, restored, op.user,
                                           "ROLLBACK_SUCCESSFUL", op.end))
        c.version, c.rollback_version, c.rolled_back = restored, None, True
        old = [n.version for n in c.nodes]
        c.nodes = [ServerNode("UP", restored) for _ in range(c.servers)]
        if c.servers == 2 and c.fault(FaultKind.ROLLBACK_ONE_SERVER):
            c.nodes[1].state = "DOWN"
        if c.servers == 2 and c.fault(FaultKind.ROLLBACK_VERSION_MISMATCH):
            c.nodes[1].version = old[1]
        c.ha_connected = True

    def _finish_join(self, c: ClusterState, op: Operation) -> None:
        target = self.scs.get(op.target_sc) if op.target_sc is not None else None
        if c.fault(FaultKind.JOIN_FAILS) or target is None:
            c.sc_result = ScResult(JOIN, "FAILED", f"{c.name} could not join the supercluster: "
                                   "replication of the shared data failed; it stays stand-alone")
            return
        del self.scs[c.sc]  # its own data is discarded: the target's shared data wins
        target.members.append(c.name)
        c.sc = target.key
        c.rolled_back = False  # it now holds the supercluster's shared data
        c.sc_result = ScResult(JOIN, "COMPLETE", f"{c.name} joined supercluster {target.name}")

    def _finish_leave(self, c: ClusterState, op: Operation) -> None:
        old = self.sc_of(c)
        old.members.remove(c.name)
        copy = [revs[-1].territory for revs in old.territories.values()]
        c.sc = self.new_sc(c.name, [c.name], copy).key
        c.sc_result = ScResult(LEAVE, "COMPLETE",
                               f"{c.name} left supercluster {old.name} and is stand-alone")

    # --- queries ------------------------------------------------------------------------------

    def gate(self, c: ClusterState, now: datetime) -> str | None:
        """Say how a restarting cluster answers now: 'drop', '503', '401', or None when up."""
        if c.op is not None and now >= c.op.restart_from:
            c.gate_count += 1
            return "drop" if c.gate_count % 2 else "503"
        if c.auth_until is not None and now < c.auth_until:
            return "401"
        return None

    def restarting(self, c: ClusterState, now: datetime) -> bool:
        """True during an operation and until the cluster accepts logins again."""
        return c.op is not None or (c.auth_until is not None and now < c.auth_until)

    def calls(self, c: ClusterState, now: datetime) -> int:
        """Return the active calls, which drain linearly while the cluster is busied out."""
        if c.drain_from is None:
            return c.calls
        span = c.drain_span.total_seconds()
        left = 1.0 - (now - c.drain_from).total_seconds() / span if span > 0 else 0.0
        return max(0, math.ceil(c.calls * left - 1e-9))

    def membership(self, c: ClusterState) -> str:
        """Return SUPERCLUSTERED, STANDALONE, JOINING or LEAVING."""
        if c.op is not None and c.op.kind in (JOIN, LEAVE):
            return "JOINING" if c.op.kind == JOIN else "LEAVING"
        return "SUPERCLUSTERED" if len(self.sc_of(c).members) > 1 else "STANDALONE"

    def joiners(self, sc: ScState) -> list[ClusterState]:
        """Return the clusters now joining this supercluster."""
        return [c for c in self.clusters.values()
                if c.op is not None and c.op.kind == JOIN and c.op.target_sc == sc.key]

    def member(self, c: ClusterState) -> Member:
        """Render one cluster as a supercluster member."""
        return Member(cluster_id=c.name, host_name=c.host_name, status=self.membership(c),
                      service_status=c.service, version=c.version)

    def supercluster_view(self, c: ClusterState, now: datetime) -> SuperclusterView:
        """Return `GET /dma-supercluster` as seen from one cluster."""
        sc = self.sc_of(c)
        names = list(sc.members) + [j.name for j in self.joiners(sc) if j.name not in sc.members]
        shown = [self.clusters[n] for n in names]
        return SuperclusterView(clusters=tuple(self.member(m) for m in shown),
                                warnings=tuple(w for m in shown for w in self.warnings(m, now)))

    def warnings(self, c: ClusterState, now: datetime) -> list[str]:
        """Return what the supercluster warns about one member."""
        found = []
        if c.op is not None and c.op.kind in (JOIN, LEAVE):
            found.append(f"{c.name} is {'joining' if c.op.kind == JOIN else 'leaving'} "
                         "the supercluster")
        if self.restarting(c, now):
            found.append(f"{c.name} ({c.host_name}) is not responding: its services are "
                         "restarting")
        return found + self.health_alerts(c)

    def health_alerts(self, c: ClusterState) -> list[str]:
        """Return the Dashboard's alerts about servers and the private link."""
        found = [f"{c.name}: server {i} is {n.state}" for i, n in enumerate(c.nodes, start=1)
                 if n.state != "UP"]
        if c.servers == 2 and not c.ha_connected:
            found.append(f"{c.name}: the private network link between the servers is down")
        return found

    def serving(self, sc: ScState, name: str, now: datetime) -> bool:
        """True when a member of this supercluster is in service and up."""
        c = self.clusters.get(name)
        return (c is not None and name in sc.members and c.service == IN_SERVICE
                and not self.restarting(c, now))

    def unserved(self, now: datetime) -> set[str]:
        """Territories that no cluster in service manages now (primary or backup), anywhere.

        A territory counts as served when, in some supercluster, its visible primary or backup is
        a member that is in service and up. Copies a cluster keeps after leaving, naming clusters
        that are not its members, serve nothing.
        """
        ids = {tid for sc in self.scs.values() for tid in sc.territories}
        served = {tid for sc in self.scs.values() for tid, revs in sc.territories.items()
                  if any(n and self.serving(sc, n, now) for n in (
                      self.visible(revs, now).primary, self.visible(revs, now).backup))}
        return ids - served

    def visible(self, revisions: list[Revision], now: datetime) -> Territory:
        """Return the territory as replication shows it now."""
        return [r for r in revisions if r.visible_at <= now][-1].territory

    def with_active(self, sc: ScState, t: Territory, now: datetime) -> Territory:
        """Fill in the active cluster: the primary if it serves, else the backup, else none."""
        active = next((n for n in (t.primary, t.backup) if n and self.serving(sc, n, now)), None)
        return replace(t, active=active)

    def territories(self, sc: ScState, now: datetime) -> list[Territory]:
        """Return the supercluster's territories as GETs show them now."""
        return [self.with_active(sc, self.visible(revs, now), now)
                for revs in sc.territories.values()]

    def installed_software(self, c: ClusterState, now: datetime) -> InstalledSoftware:
        """Return `GET /installed-software`, with an entity tag derived from the content."""
        ready = c.package if c.package is not None and c.package.ready_at <= now else None
        body = InstalledSoftware(
            system_version=c.version, rollback_version=c.rollback_version,
            upgrade_version=ready.version if ready else None, sha1=ready.sha1 if ready else None,
            restart_required=ready is not None,
            activation_key_required=bool(c.history) and c.fault(FaultKind.NEEDS_KEYS) is not None,
            estimated_install_minutes=c.estimate if ready else None, history=tuple(c.history))
        digest = hashlib.sha1(json.dumps(body.to_json(), sort_keys=True).encode())
        return replace(body, entity_tag=digest.hexdigest()[:12])

    def ha_status(self, c: ClusterState) -> HaStatus:
        """Return `GET /high-availability/status`."""
        nodes = tuple(Node(node_id=i, host_name=f"{c.name}-{'ab'[i - 1]}", state=n.state,
                           package_version=n.version, address=_address(c.name, i),
                           serial=_serial(c.name, i)) for i, n in enumerate(c.nodes, start=1))
        return HaStatus(ha_active=c.servers == 2, ha_connected=c.ha_connected, our_id=1,
                        nodes=nodes)

    def snapshot(self, now: datetime) -> dict[str, Any]:
        """Return a JSON-able picture of every cluster and supercluster."""
        return {"now": now.isoformat(),
                "clusters": {c.name: self._cluster_snapshot(c, now)
                             for c in self.clusters.values()},
                "superclusters": [self._sc_snapshot(sc, now) for sc in self.scs.values()]}

    def _cluster_snapshot(self, c: ClusterState, now: datetime) -> dict[str, Any]:
        op = c.op
        return {
            "version": c.version, "servers": c.servers, "hostName": c.host_name,
            "serviceStatus": c.service, "membership": self.membership(c),
            "supercluster": self.sc_of(c).name, "members": list(self.sc_of(c).members),
            "activeCalls": self.calls(c, now), "registrations": c.registrations,
            "restarting": self.restarting(c, now),
            "operation": None if op is None else {
                "kind": op.kind, "start": op.start.isoformat(), "end": op.end.isoformat(),
                "toVersion": op.to_version or None, "hung": self.hung(c)},
            "installedSoftware": self.installed_software(c, now).to_json(),
            "highAvailability": self.ha_status(c).to_json(),
            "faults": [f.kind.value for f in c.faults.values()],
        }

    def _sc_snapshot(self, sc: ScState, now: datetime) -> dict[str, Any]:
        return {"name": sc.name, "members": list(sc.members),
                "territories": [t.to_json() for t in self.territories(sc, now)],
                "pendingTerritories": [revs[-1].territory.to_json()
                                       for revs in sc.territories.values()
                                       if revs[-1].visible_at > now]}

    # --- faults -------------------------------------------------------------------------------

    def set_fault(self, c: ClusterState, fault: Fault) -> None:
        """Set a fault, replacing one of the same kind."""
        c.faults[fault.kind] = fault
        if fault.kind is FaultKind.SERVER_DOWN:
            c.nodes[-1].state = "DOWN"

    def clear_faults(self, c: ClusterState, now: datetime) -> None:
        """Remove every fault and repair what it broke that can heal by itself.

        A hung install comes back from now on, a server that stayed down comes up, the private
        link is restored. Servers on different package versions stay so until the next install
        or rollback: only an install changes a server's package.
        """
        if self.hung(c) and c.op is not None and c.op.end < now:
            c.op.end = now
        for node in c.nodes:
            node.state = "UP"
        c.ha_connected = True
        c.faults.clear()


def _address(cluster: str, node: int) -> str:
    """A stable documentation address (RFC 5737) for a simulated server."""
    return f"192.0.2.{(zlib.crc32(cluster.encode()) % 50) * 4 + node}"


def _serial(cluster: str, node: int) -> str:
    """A stable serial number for a simulated server."""
    return f"SIM{zlib.crc32(cluster.encode()) % 100000:05d}-{node}"
