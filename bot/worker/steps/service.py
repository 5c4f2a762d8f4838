"""Service-status steps: busy out, drain, take out of service, return to service, remove."""

from __future__ import annotations

from bot.dma.errors import DmaNotReachable
from bot.runs.outcome import Outcome
from bot.worker.context import StepContext

OUT = ("BUSIED_OUT", "OUT_OF_SERVICE")


def _service_status(ctx: StepContext) -> str | None:
    member = ctx.client().supercluster().member(ctx.cluster or "")
    return member.service_status if member else None


def _set_status(ctx: StepContext, wanted: tuple[str, ...], send: str, note: str) -> Outcome:
    """Check the cluster's service status, and change it only when it is not already wanted."""
    status = _service_status(ctx)
    if status in wanted:
        return Outcome.done(f"{ctx.cluster} is {status}")
    if status is None:
        return Outcome.fail(f"{ctx.cluster} does not list itself in its supercluster view")
    if ctx.elapsed_s() > ctx.seconds(ctx.timing.drain_timeout):
        return Outcome.fail(f"{ctx.cluster} still reports {status} after asking for {send} for "
                            f"{int(ctx.elapsed_s() // 60)} min")
    if ctx.phase == "requested" and (ctx.since("requested_at") or 0) < ctx.poll_s * 3:
        return Outcome.wait(ctx.poll_s, f"waiting for {ctx.cluster} to report {send}")
    ctx.client().set_service_status(ctx.cluster or "", send)
    return Outcome.wait(min(ctx.poll_s, 5.0), note, phase="requested",
                        data={"requested_at": ctx.stamp()})


def busy_out(ctx: StepContext) -> Outcome:
    """Busy the cluster out: running calls go on, its territories fail over to their backups."""
    return _set_status(ctx, OUT, "BUSIED_OUT", f"busying out {ctx.cluster}")


def out_of_service(ctx: StepContext) -> Outcome:
    """Take the cluster out of service (maintenance window, no calls left)."""
    return _set_status(ctx, ("OUT_OF_SERVICE",), "OUT_OF_SERVICE",
                       f"taking {ctx.cluster} out of service")


def return_to_service(ctx: StepContext) -> Outcome:
    """Return the cluster to service."""
    return _set_status(ctx, ("IN_SERVICE",), "IN_SERVICE", f"returning {ctx.cluster} to service")


def drain(ctx: StepContext) -> Outcome:
    """Wait for the calls to end, bounded by drain_timeout; forcing it is an operator's decision."""
    calls = ctx.client().status().active_calls
    if calls == 0:
        return Outcome.done(f"no active calls on {ctx.cluster}")
    if ctx.params.get("emergency"):
        return Outcome.done(f"{calls} calls still up on {ctx.cluster}: going on without waiting "
                            "(the plan was made with `emergency`)", data={"emergency_calls": calls})
    if ctx.data.get("resumed"):  # an operator chose to go on: drop the remaining calls
        ctx.client().set_service_status(ctx.cluster or "", "OUT_OF_SERVICE")
        return Outcome.done(f"{calls} calls dropped on {ctx.cluster}: taken out of service "
                            "by an operator's decision", data={"forced_calls": calls})
    limit = ctx.seconds(ctx.timing.drain_timeout)
    if ctx.elapsed_s() >= limit:
        return Outcome.block(f"{calls} calls still active on {ctx.cluster} after "
                             f"{int(limit // 60)} min. `resume` takes it out of service and drops "
                             "them; `abort` stops the run", data={"calls": calls})
    return Outcome.wait(ctx.poll_s, f"{calls} active calls on {ctx.cluster}, draining",
                        data={"calls": calls})


def remove(ctx: StepContext) -> Outcome:
    """Remove the cluster from its supercluster via a member that stays, then wait for it."""
    via = ctx.params["via"]
    name = ctx.cluster or ""
    member = ctx.client(via).supercluster().member(name)
    if member is not None and member.status != "LEAVING" and ctx.phase != "requested":
        ctx.client(via).remove_cluster(name)  # 409 when a vendor precondition is not met
        return Outcome.wait(ctx.poll_s, f"removing {name} from the supercluster (via {via})",
                            phase="requested", data={"requested_at": ctx.stamp()})
    if member is not None:
        return _bounded_wait(ctx, f"{name} is leaving the supercluster")
    try:
        own = ctx.poll().supercluster()
    except DmaNotReachable:
        return _bounded_wait(ctx, f"{name} restarts as a stand-alone cluster")
    if own.ids == {name}:
        return Outcome.done(f"{name} is now a stand-alone cluster")
    return _bounded_wait(ctx, f"{name} still lists {', '.join(sorted(own.ids - {name}))}")


def _bounded_wait(ctx: StepContext, note: str) -> Outcome:
    limit = ctx.timing.escalate_after * ctx.seconds(
        ctx.timing.leave_estimate + ctx.timing.login_grace)
    if ctx.elapsed_s() > limit:
        return Outcome.fail(f"{note} for {int(ctx.elapsed_s() // 60)} min, longer than the "
                            f"{int(limit // 60)} min allowed")
    return Outcome.wait(ctx.poll_s, note)


def people_work(ctx: StepContext) -> Outcome:
    """Pause for the people's work of the factors until an operator says "Done, continue"."""
    if ctx.data.get("resumed"):
        return Outcome.done(f"people's work after {ctx.cluster} joined: done (confirmed by "
                            f"{ctx.data.get('resumed_by', 'an operator')})")
    return Outcome.block(
        f"{ctx.cluster} is in the new supercluster: now the people's work of the factors — "
        "re-provision or redirect endpoints (factor 5), point DNS at the right supercluster "
        "(8), check Conference Manager (9) and the site-topology bandwidth limits (10). Press "
        f"\"Done, continue\" (or `/upgrade resume {ctx.run_name}`) when it is done")
