"""Territory steps: record, reassign, move, restore, check. Each converges on a desired state."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from bot.dma.errors import DmaNotReachable, DmaStaleTag
from bot.dma.models import Territory
from bot.runs.outcome import Outcome
from bot.worker.context import StepContext

Assignment = tuple[str | None, str | None]


def record_territories(ctx: StepContext) -> Outcome:
    """Record every territory (primary, backup, hosting) before anything moves (guide)."""
    via = ctx.params.get("via") or ctx.plan.order[0]
    view = ctx.client(via).supercluster()
    rows = [t.to_json() for t in ctx.client(via).territories()]
    note = f"recorded {len(rows)} territories of {ctx.plan.target} via {via}"
    return Outcome.done(note, snapshot=rows,
                        data={"members": sorted(view.ids), "count": len(rows)})


def reassign_territories(ctx: StepContext) -> Outcome:
    """Move territories off clusters that leave, so removal is allowed (guide: required first)."""
    if "to" in ctx.params:  # full outage: everything onto the seed, which stays
        via = ctx.params["to"]
        desired: dict[str, Assignment] = {t.territory_id: (via, None)
                                          for t in ctx.client(via).territories()
                                          if t.primary is not None}
        return converge(ctx, via, desired)
    leaving = ctx.params["away_from"]
    stay = list(ctx.params["stay"])
    via = stay[0]
    desired = {t.territory_id: away_from(t, leaving, stay)
               for t in ctx.client(via).territories()}
    return converge(ctx, via, desired)


def away_from(t: Territory, leaving: str, stay: list[str]) -> Assignment:
    """Choose a primary and backup among `stay` for a territory that must not use `leaving`."""
    primary, backup = t.primary, t.backup
    if primary is None and backup is None:
        return None, None  # released here: the new supercluster serves it now
    if primary == leaving:
        primary = backup if backup in stay else stay[0]
    if primary is not None and primary not in stay:
        primary = stay[0]
    if backup in (leaving, primary) or (backup is not None and backup not in stay):
        backup = next((c for c in stay if c != primary), None)
    return primary, backup


def move_territories(ctx: StepContext) -> Outcome:
    """Move territories into the new supercluster, then release them in the old one.

    Into the new supercluster go the territories whose recorded primary is in it (with `every`:
    all of them, onto their recorded backup or cluster A when the primary is not there yet);
    every other territory stays released there. Only once the new supercluster shows them are
    they released in the old one (no primary, no backup), so a territory is never served by no
    cluster, nor by both superclusters for longer than replication takes.
    """
    new, seed = list(ctx.params["new"]), ctx.plan.seed or ctx.params["new"][0]
    old = list(ctx.params.get("old") or ())
    every = ctx.params.get("every") == "yes"
    desired = {row["territoryIdentifier"]: _into(row, new, seed, every) for row in ctx.snapshot}
    if ctx.phase != "releasing":
        moved = converge(ctx, seed, desired)
        if moved.kind != "done" or not old:
            return moved
        return Outcome.checkpoint("releasing", f"{moved.note}; now releasing them in the old "
                                  f"supercluster (via {old[0]})")
    taken = {tid for tid, (primary, _) in desired.items() if primary is not None}
    current = {t.territory_id: (t.primary, t.backup) for t in ctx.client(old[0]).territories()}
    released: dict[str, Assignment] = {
        tid: (None, None) if tid in taken else a for tid, a in current.items()}
    return converge(ctx, old[0], released, phase="releasing")


def _into(row: Mapping[str, Any], new: list[str], seed: str, every: bool) -> Assignment:
    """Where a recorded territory goes in the new supercluster now (None: released there)."""
    primary, backup = row.get("primaryNodeIdentifier"), row.get("backupNodeIdentifier")
    if primary in new:
        return primary, backup if backup in new and backup != primary else None
    if not every:
        return None, None
    chosen = backup if backup in new else seed
    return chosen, next((c for c in new if c != chosen), None)


def restore_territories(ctx: StepContext) -> Outcome:
    """Restore the recorded territory plan in the new supercluster (guide)."""
    if not ctx.snapshot:
        return Outcome.fail("no territory record for this run: cannot restore territories")
    via = ctx.params.get("via") or ctx.plan.seed or ctx.plan.order[0]
    desired = {row["territoryIdentifier"]: (row.get("primaryNodeIdentifier"),
                                           row.get("backupNodeIdentifier"))
               for row in ctx.snapshot}
    # The recorded plan includes which territories host conference rooms (guide: restore it).
    hosting = {row["territoryIdentifier"]: bool(row.get("conferenceRoomHost"))
               for row in ctx.snapshot}
    return converge(ctx, via, desired, hosting=hosting)


def converge(ctx: StepContext, via: str, desired: Mapping[str, Assignment], *,
             hosting: Mapping[str, bool] | None = None, phase: str = "replicating") -> Outcome:
    """PUT what differs, then wait until another member shows the change (never assume).

    `hosting` also sets each territory's conference-room hosting flag (the recorded plan).
    """
    client = ctx.client(via)
    current = {t.territory_id: t for t in client.territories()}
    missing = sorted(set(desired) - set(current))
    if missing:
        return Outcome.fail(f"territories {', '.join(missing)} are not in the supercluster of "
                            f"{via} any more; cannot reassign them")
    todo = _differences(current, desired, hosting)
    if not todo:
        return _confirm(ctx, via, desired, hosting)
    limit = max(ctx.seconds(ctx.timing.drain_timeout), ctx.timing.escalate_after * ctx.estimate_s)
    if ctx.elapsed_s() > limit:
        # A DMA that takes the change but reports it otherwise would keep us here forever.
        return Outcome.fail(f"{len(todo)} territories via {via} still differ from what was set "
                            f"after {int(ctx.elapsed_s() // 60)} min: "
                            + ", ".join(f"{tid} wants {a[0]}/{a[1] or 'no backup'}, shows "
                                        f"{current[tid].primary}/{current[tid].backup or 'none'}"
                                        for tid, a in sorted(todo.items())))
    last_put = ctx.since("put_at")
    if last_put is not None and last_put < ctx.poll_s:
        return Outcome.wait(ctx.poll_s, f"waiting for {len(todo)} territory changes to replicate")
    changed = 0
    for tid, (primary, backup) in sorted(todo.items()):
        host = (hosting or {}).get(tid, current[tid].conference_room_host)
        try:
            client.update_territory(replace(current[tid], primary=primary, backup=backup,
                                            conference_room_host=host))
            changed += 1
        except DmaStaleTag:
            continue  # someone (or replication) changed it: re-read on the next visit
    return Outcome.wait(ctx.poll_s, f"reassigned {changed} territories via {via}; "
                        "waiting for replication", phase=phase,
                        data={"put_at": ctx.stamp()})


def _differences(current: Mapping[str, Territory], desired: Mapping[str, Assignment],
                 hosting: Mapping[str, bool] | None) -> dict[str, Assignment]:
    hosting = hosting or {}
    return {tid: a for tid, a in desired.items()
            if (current[tid].primary, current[tid].backup) != a
            or hosting.get(tid, current[tid].conference_room_host)
            != current[tid].conference_room_host}


def _confirm(ctx: StepContext, via: str, desired: Mapping[str, Assignment],
             hosting: Mapping[str, bool] | None) -> Outcome:
    """Replication is confirmed on another member than the one the change was sent to."""
    witness = _witness(ctx, via)
    result = {"assignments": {k: list(v) for k, v in desired.items()}, "confirmed_via": witness}
    if witness is None:  # the supercluster has one member: nothing to replicate to
        return Outcome.done(f"{len(desired)} territories as wanted (checked via {via}, the only "
                            "member)", data=result)
    seen = {t.territory_id: t for t in ctx.client(witness).territories()}
    if any(tid not in seen for tid in desired) or _differences(seen, desired, hosting):
        if ctx.elapsed_s() > max(ctx.seconds(ctx.timing.drain_timeout), 3 * ctx.poll_s):
            return Outcome.fail(f"{via} shows the territory changes but {witness} still does "
                                f"not after {int(ctx.elapsed_s() // 60)} min: replication "
                                "between them does not work")
        return Outcome.wait(ctx.poll_s, f"{via} shows the change; waiting for {witness} to "
                            "show it (replication)")
    return Outcome.done(f"{len(desired)} territories as wanted (set via {via}, replication "
                        f"confirmed on {witness})", data=result)


def _witness(ctx: StepContext, via: str) -> str | None:
    """Another member of via's supercluster that answers, to confirm replication on."""
    view = ctx.client(via).supercluster()
    for member in sorted(view.clusters, key=lambda m: m.cluster_id):
        if member.cluster_id == via or member.status != "SUPERCLUSTERED":
            continue
        if member.cluster_id not in ctx.inventory:
            continue
        try:
            ctx.client(member.cluster_id).installed_software()
        except DmaNotReachable:
            continue  # restarting (a join's second half): another member may answer
        return member.cluster_id
    return None


def check_territories(ctx: StepContext) -> Outcome:
    """Check the cluster's territories are back on it, their primary (basic step 7)."""
    territories = ctx.client().territories()
    off = [t for t in territories if t.primary == ctx.cluster and t.active != ctx.cluster]
    if not off:
        mine = sum(1 for t in territories if t.primary == ctx.cluster)
        return Outcome.done(f"{mine} territories active on their primary {ctx.cluster}")
    if ctx.elapsed_s() < ctx.seconds(ctx.timing.drain_timeout):
        return Outcome.wait(ctx.poll_s, f"{len(off)} territories not yet back on {ctx.cluster}")
    details: dict[str, Any] = {"territories": [
        {"territory": t.name or t.territory_id, "primary": t.primary, "active": t.active}
        for t in off]}
    return Outcome.escalate("supercluster-check", f"territories of {ctx.cluster} did not return "
                            "to their primary", details)
