"""Package, install, log-in and verification steps of one cluster (basic steps 1 and 3-6)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bot.dma.errors import DmaNotReachable
from bot.dma.models import FAILURE_STATUSES, InstalledSoftware
from bot.engine.verification import (
    CONDITION_TEXT,
    ClusterReport,
    Condition,
    login_deadline,
    login_verdict,
    overdue,
    verify_cluster,
)
from bot.engine.versions import same_version
from bot.runs.outcome import Outcome
from bot.worker.context import StepContext
from bot.worker.packet import seen_servers


def upload(ctx: StepContext) -> Outcome:
    """Make sure the target package is uploaded, and note the cluster's install estimate."""
    sw = ctx.client().installed_software()
    if same_version(sw.system_version, ctx.to_version):
        return Outcome.done(f"{ctx.cluster} already runs {ctx.to_version}",
                            data={"already": True})
    if sw.upgrade_version and same_version(sw.upgrade_version, ctx.to_version):
        wanted = ctx.package.sha1 if ctx.package else None
        if wanted and sw.sha1 and sw.sha1.lower() != wanted.lower():
            # Guide step 1: check that it is the right package before anything else.
            return Outcome.fail(f"the package uploaded on {ctx.cluster} has SHA-1 {sw.sha1}, "
                                f"the config says {wanted}: not the right package")
        estimate = sw.estimated_install_minutes
        shown = f"{estimate:g} min" if estimate is not None else "none shown"
        return Outcome.done(f"package {ctx.to_version} uploaded on {ctx.cluster}; install "
                            f"estimate {shown}", data={"estimate_min": estimate})
    if ctx.package is None:
        return Outcome.fail(f"no package configured for {ctx.to_version} (packages: in the "
                            "config file)")
    if ctx.phase == "requested":
        waited = ctx.since("requested_at") or 0.0
        if waited > ctx.seconds(ctx.timing.upload_timeout):
            return Outcome.fail(f"{ctx.cluster} has not fetched the package after "
                                f"{int(waited // 60)} min (uploaded: {sw.upgrade_version})")
        return Outcome.wait(ctx.poll_s, f"{ctx.cluster} is fetching the package")
    ctx.client().upload_package_url(ctx.package.url, ctx.package.sha1)
    return Outcome.wait(ctx.poll_s, f"asked {ctx.cluster} to fetch {ctx.to_version}",
                        phase="requested", data={"requested_at": ctx.stamp()})


def install_estimate_s(ctx: StepContext, cluster: str) -> float:
    """The estimate the cluster showed once the package was uploaded, else the plan's.

    After a rollback (`applied_by` "rollback"), the rollback step's estimate (a restart).
    """
    applied_by = str(ctx.params.get("applied_by") or "install")
    if applied_by == "rollback":
        step = next((s for s in ctx.plan.steps if s.key == f"{applied_by}:{cluster}"), None)
        return step.estimate_s if step else ctx.seconds(ctx.timing.login_grace)
    minutes = ctx.step_data.get(f"upload:{cluster}", {}).get("estimate_min")
    if minutes:
        return float(minutes) * 60.0
    install = next((s for s in ctx.plan.steps if s.key == f"install:{cluster}"), None)
    return install.estimate_s if install else ctx.seconds(ctx.timing.install_estimate)


def install(ctx: StepContext) -> Outcome:
    """Start the install once; after a lost answer or a crash, read the cluster, never resend blind.

    The intent is committed (phase "applying") before the request, and the request goes out on
    the visit right after. A clean 202 ends the step and `wait_login` watches the restart. When
    the answer was lost, or a worker died around the request, only what the cluster says decides:
    on the target, the install happened; silent, it may be restarting, so the step waits up to
    the vendor's login deadline; still answering on the old version with the package pending a
    whole login grace later, the request did not take and is sent again (three requests at most;
    then a person looks).
    """
    if ctx.phase != "applying":
        sw = ctx.client().installed_software()
        if same_version(sw.system_version, ctx.to_version):
            return Outcome.done(f"{ctx.cluster} already runs {ctx.to_version}",
                                data={"applied_at": ctx.stamp(), "already": True})
        refused = calls_up(ctx)
        if refused is not None:
            return refused
        # The servers as they were before the restart: what an escalation packet shows of a
        # cluster that never comes back.
        return Outcome.checkpoint("applying", f"installing {ctx.to_version} on {ctx.cluster}",
                                  data={"apply_at": ctx.stamp(),
                                        "servers_seen": seen_servers(ctx)})
    try:
        sw = ctx.poll().installed_software()  # it may be restarting: polled, not retried
    except DmaNotReachable as exc:
        return _silent_after_apply(ctx, exc)
    if same_version(sw.system_version, ctx.to_version) or _failed_install(sw, ctx):
        # On the target, or the cluster reports the install failed: verification says which.
        return Outcome.done(f"{ctx.cluster} runs {sw.system_version}",
                            data={"applied_at": ctx.data.get("apply_tried_at")
                                  or ctx.data.get("apply_at") or ctx.stamp()})
    tries = int(ctx.data.get("apply_tries", 0))
    # Right after the checkpoint, or after a 503 (the cluster said it did not handle it).
    fresh = (tries == 0 and (ctx.since("apply_at") or 0.0) < ctx.poll_s) or bool(
        ctx.data.get("apply_refused"))
    quiet = min(x for x in (ctx.since("apply_at"), ctx.since("apply_tried_at")) if x is not None)
    pending = sw.upgrade_version is not None and same_version(sw.upgrade_version, ctx.to_version)
    if not fresh and not (pending and quiet >= ctx.seconds(ctx.timing.login_grace)):
        return _silent_after_apply(ctx, None)  # it may be preparing its restart: wait, bounded
    if tries >= 3:
        return Outcome.fail(f"{ctx.cluster} still runs {sw.system_version} with "
                            f"{ctx.to_version} uploaded after {tries} install requests whose "
                            "answers were lost; check it in the DMA web UI, then "
                            "`/upgrade retry`")
    stamp = {"apply_tries": tries + 1, "apply_tried_at": ctx.stamp(), "apply_refused": None}
    try:
        op = ctx.client().apply_upgrade()
    except DmaNotReachable as exc:
        if exc.status == 503:  # refused unhandled: may be sent again once the state is read
            return Outcome.wait(ctx.poll_s, f"{ctx.cluster} answered 503 to the install "
                                "request; reading its state, then asking again",
                                data={"apply_refused": True, "apply_tried_at": ctx.stamp()})
        if not exc.request_sent:
            raise
        return Outcome.wait(ctx.poll_s, f"no answer to the install request on {ctx.cluster}; "
                            "reading its state before anything else", data=stamp)
    return Outcome.done(f"install of {ctx.to_version} started on {ctx.cluster} "
                        f"({op.message or op.operation_type})",
                        data={"applied_at": ctx.stamp(), **stamp})


def calls_up(ctx: StepContext) -> Outcome | None:
    """Refuse to install on a cluster in service or with calls up, unless the plan said emergency.

    Guide: "do not upgrade with calls active except in an emergency: a restart drops calls".
    """
    calls = ctx.client().status().active_calls
    member = ctx.client().supercluster().member(ctx.cluster or "")
    service = member.service_status if member else "unknown"
    if calls == 0 and service != "IN_SERVICE":
        return None
    if ctx.params.get("emergency"):
        return None  # recorded by the plan (in bold) and its audit entry
    return Outcome.fail(f"{ctx.cluster} is {service} with {calls} active calls: the guide says "
                        "do not upgrade with calls active except in an emergency, so the install "
                        "was not started. Busy it out and let the calls end, then `retry`; or "
                        "plan again with `emergency`", data={"calls": calls, "service": service})


def _failed_install(sw: InstalledSoftware, ctx: StepContext) -> bool:
    """True when the newest history row of a server says an install of the target failed."""
    rows = [r for r in (sw.latest_for_server(n) for n in (1, 2)) if r is not None]
    return any(r.status in FAILURE_STATUSES and same_version(r.to_version, ctx.to_version)
               for r in rows)


def _silent_after_apply(ctx: StepContext, exc: DmaNotReachable | None) -> Outcome:
    """A cluster not yet back on the target after an install request: wait, up to the deadline."""
    # The latest of: the request, a resend, an operator's retry (which grants a new deadline).
    moments = [ctx.data.get(k) for k in ("apply_at", "apply_tried_at", "retry_at")]
    applied_at = max((datetime.fromisoformat(m) for m in moments if m), default=ctx.now)
    estimate = install_estimate_s(ctx, ctx.cluster or "")
    grace = ctx.seconds(ctx.timing.login_grace)
    verdict = login_verdict(now=ctx.now, applied_at=applied_at, estimate_s=estimate,
                            login_grace_s=grace, factor=ctx.timing.escalate_after,
                            logged_in=False)
    reason = exc.reason if exc else "still on the old version"
    if verdict == "wait":
        return Outcome.wait(ctx.poll_s, f"{ctx.cluster}: {reason}; installing, or unreachable",
                            data=_overdue(ctx, applied_at, estimate))
    waited = (ctx.now - applied_at).total_seconds()
    if exc is None:  # it answers, on the old version, at the deadline: verification names it
        return Outcome.done(f"{ctx.cluster} answers but did not install {ctx.to_version}",
                            data={"applied_at": applied_at.isoformat()})
    sent = ("install requested (answer lost)" if ctx.data.get("apply_tries")
            else "install intended (a worker stopped around the request; not confirmed sent)")
    details: dict[str, Any] = {"estimate_min": round(estimate / 60, 1),
                               "waited_min": round(waited / 60, 1), "last_answer": reason,
                               "done": ["package uploaded", sent]}
    return Outcome.escalate(Condition.CANNOT_LOG_IN.value,
                            CONDITION_TEXT[Condition.CANNOT_LOG_IN], details)


def _overdue(ctx: StepContext, applied_at: datetime, estimate_s: float) -> dict[str, Any]:
    """Step data marking a cluster overdue (the board and a one-time note show it)."""
    late = overdue(now=ctx.now, applied_at=applied_at, estimate_s=estimate_s,
                   login_grace_s=ctx.seconds(ctx.timing.login_grace),
                   factor=ctx.timing.escalate_after)
    return {"overdue": {**late, "since": applied_at.isoformat()}} if late else {}


def wait_login(ctx: StepContext) -> Outcome:
    """Wait for the cluster to come back; escalate when it stays away far too long (condition 1)."""
    name = ctx.cluster or ""
    applied_by = str(ctx.params.get("applied_by") or "install")  # or "rollback"
    applied = ctx.step_data.get(f"{applied_by}:{name}", {}).get("applied_at")
    applied_at = datetime.fromisoformat(applied) if applied else (ctx.started_at or ctx.now)
    if ctx.data.get("retry_at"):  # an operator asked to re-verify: allow one more grace period
        applied_at = max(applied_at, datetime.fromisoformat(ctx.data["retry_at"]))
    estimate = install_estimate_s(ctx, name)
    grace = ctx.seconds(ctx.timing.login_grace)
    reason, version = "", None
    try:
        sw = ctx.poll().installed_software()
        version = sw.system_version
        logged_in = same_version(version, ctx.to_version) or _failed_install(sw, ctx)
        reason = f"logged in, still on {version}" if not logged_in else ""
    except DmaNotReachable as exc:
        logged_in, reason = False, exc.reason
    verdict = login_verdict(now=ctx.now, applied_at=applied_at, estimate_s=estimate,
                            login_grace_s=grace, factor=ctx.timing.escalate_after,
                            logged_in=logged_in)
    waited = (ctx.now - applied_at).total_seconds()
    times = {"estimate_min": round(estimate / 60, 1), "waited_min": round(waited / 60, 1)}
    if verdict == "ok":
        return Outcome.done(f"logged back in to {name} after {times['waited_min']} min "
                            f"(estimate {times['estimate_min']} min)", data=times)
    if version is not None and verdict == "escalate":
        # It answers, on the old version, at the deadline: verification names the mismatch.
        return Outcome.done(f"{name} answers but runs {version}", data=times)
    if verdict == "wait" or version is not None:
        answered = {"answered_at": ctx.stamp()} if version is not None else {}
        return Outcome.wait(ctx.poll_s, f"waiting to log back in to {name} ({reason})",
                            data={**times, **answered, **_overdue(ctx, applied_at, estimate)})
    deadline = login_deadline(applied_at, estimate, grace, ctx.timing.escalate_after)
    details: dict[str, Any] = {**times, "last_answer": reason, "deadline": deadline.isoformat(),
                               "done": _done(ctx, "started")}
    return Outcome.escalate(Condition.CANNOT_LOG_IN.value,
                            CONDITION_TEXT[Condition.CANNOT_LOG_IN], details)


def _done(ctx: StepContext, *more: str) -> list[str]:
    """What was already done before this step, for the escalation message."""
    if ctx.plan.strategy.value == "rollback":
        return [f"rollback to {ctx.to_version} {more[0]}", *more[1:]]
    return ["package uploaded", f"install {more[0]}", *more[1:]]


def verify(ctx: StepContext) -> Outcome:
    """Check the Dashboard: both servers up, same package, on target, private link, history."""
    name = ctx.cluster or ""
    sw = ctx.client().installed_software()
    ha = ctx.client().ha_status()
    verdict = verify_cluster(expected_servers=ctx.servers(), target_version=ctx.to_version,
                             installed=sw, ha=ha)
    times = ctx.step_data.get(f"wait_login:{name}", {})
    report = ClusterReport(name, verdict, waited_min=times.get("waited_min"),
                           estimate_min=times.get("estimate_min"))
    result = report.to_json()
    if verdict.ok:
        return Outcome.done(f"{name} verified: {verdict.summary}", data=result,
                            reports=(report,))
    assert verdict.condition is not None
    details = {**result, "done": _done(ctx, "started", "logged back in")}
    # The summary already says the condition in the vendor's words, then the first failure.
    return Outcome.escalate(verdict.condition.value, verdict.summary, details, reports=(report,))


def licence_keys(ctx: StepContext) -> Outcome:
    """Pause for the licence keys when the package needs them (basic step 6: manual)."""
    if not ctx.client().installed_software().activation_key_required:
        return Outcome.done(f"{ctx.cluster} needs no new licence keys")
    if ctx.data.get("resumed"):
        return Outcome.done(f"licence keys installed on {ctx.cluster} (confirmed by an operator)")
    return Outcome.block(f"{ctx.cluster} needs new licence activation keys: install them in "
                         "the DMA web UI, then `resume`")
