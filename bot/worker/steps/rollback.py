"""Recovery steps: re-read before acting, roll back once, assign territories, check service.

The rollback is kill-safe like the install: the intent is committed (phase "applying") before the
request; after a lost answer or a dead worker, only what the cluster says decides whether the
request went through, so a rollback is never sent twice on the same facts.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bot.dma.errors import DmaNotReachable
from bot.dma.models import InstalledSoftware
from bot.engine.recovery_plans import decode_assignments
from bot.engine.verification import (
    CONDITION_TEXT,
    Check,
    Condition,
    SuperclusterReport,
    Verdict,
    login_verdict,
)
from bot.engine.versions import same_version
from bot.runs.outcome import Outcome
from bot.worker.context import StepContext
from bot.worker.steps.territories import converge

MAX_TRIES = 3


def _pairs(values: Any) -> dict[str, str]:
    return dict(str(v).split("=", 1) for v in (values or ()))


def recovery_check(ctx: StepContext) -> Outcome:
    """Refuse to start when the clusters no longer match what the recovery plan was made from."""
    problems = []
    for name, version in _pairs(ctx.params.get("expect")).items():
        sw = ctx.client(name).installed_software()
        if not same_version(sw.system_version, version):
            problems.append(f"{name} runs {sw.system_version}, the plan says {version}")
    for name, version in _pairs(ctx.params.get("rollback")).items():
        sw = ctx.client(name).installed_software()
        if not same_version(sw.rollback_version, version):
            problems.append(f"{name} can roll back to {sw.rollback_version or 'nothing'}, "
                            f"the plan says {version}")
    if problems:
        return Outcome.fail("the clusters no longer match the recovery plan: "
                            + "; ".join(problems) + ". Make a new plan.")
    return Outcome.done("the clusters match the recovery plan")


def _rolled_back(sw: InstalledSoftware, version: str) -> bool:
    return same_version(sw.system_version, version) and sw.rollback_version is None


def rollback(ctx: StepContext) -> Outcome:
    """Roll the cluster back once; after a crash or a lost answer, read it, never resend blind."""
    version = str(ctx.params.get("version") or ctx.to_version)
    if ctx.phase != "applying":
        sw = ctx.client().installed_software()
        if _rolled_back(sw, version):
            return Outcome.done(f"{ctx.cluster} already runs {version}",
                                data={"applied_at": ctx.stamp(), "already": True})
        return Outcome.checkpoint("applying", f"rolling {ctx.cluster} back to {version}",
                                  data={"apply_at": ctx.stamp()})
    try:
        sw = ctx.client().installed_software()
    except DmaNotReachable as exc:  # restarting, most likely: the request got through
        return _silent(ctx, version, exc.reason)
    if _rolled_back(sw, version):
        return Outcome.done(f"{ctx.cluster} runs {version}", data={"applied_at": _applied(ctx)})
    tries = int(ctx.data.get("apply_tries", 0))
    quiet = min(x for x in (ctx.since("apply_at"), ctx.since("apply_tried_at")) if x is not None)
    fresh = tries == 0 and quiet < ctx.poll_s
    # Still answering on the upgraded version a whole login grace after a request: it did
    # not take. Right after the checkpoint: this is the first request.
    if not fresh and quiet < ctx.seconds(ctx.timing.login_grace):
        return _silent(ctx, version, "still on the upgraded version")
    if tries >= MAX_TRIES:
        return Outcome.fail(f"{ctx.cluster} still runs {sw.system_version} after {tries} "
                            "rollback requests whose answers were lost; check it in the DMA web "
                            "UI, then `/upgrade retry`")
    stamp = {"apply_tries": tries + 1, "apply_tried_at": ctx.stamp()}
    try:
        op = ctx.client().rollback()
    except DmaNotReachable as exc:
        if not exc.request_sent:
            raise
        return Outcome.wait(ctx.poll_s, f"no answer to the rollback request on {ctx.cluster}; "
                            "reading its state before anything else", data=stamp)
    return Outcome.done(f"rollback to {version} started on {ctx.cluster} "
                        f"({op.message or op.operation_type})",
                        data={"applied_at": ctx.stamp(), **stamp})


def _applied(ctx: StepContext) -> str:
    return str(ctx.data.get("apply_tried_at") or ctx.data.get("apply_at") or ctx.stamp())


def _silent(ctx: StepContext, version: str, reason: str) -> Outcome:
    """Not (yet) back on the rollback version: wait, up to the vendor's login deadline."""
    moments = [ctx.data.get(k) for k in ("apply_at", "apply_tried_at", "retry_at")]
    applied_at = max((datetime.fromisoformat(m) for m in moments if m), default=ctx.now)
    verdict = login_verdict(now=ctx.now, applied_at=applied_at, estimate_s=ctx.estimate_s,
                            login_grace_s=ctx.seconds(ctx.timing.login_grace),
                            factor=ctx.timing.escalate_after, logged_in=False)
    if verdict == "wait":
        return Outcome.wait(ctx.poll_s, f"{ctx.cluster}: {reason}; rolling back, or "
                            "unreachable")
    waited = (ctx.now - applied_at).total_seconds()
    details: dict[str, Any] = {"estimate_min": round(ctx.estimate_s / 60, 1),
                               "waited_min": round(waited / 60, 1), "last_answer": reason,
                               "done": [f"rollback to {version} requested"]}
    return Outcome.escalate(Condition.CANNOT_LOG_IN.value,
                            CONDITION_TEXT[Condition.CANNOT_LOG_IN], details)


def assign_territories(ctx: StepContext) -> Outcome:
    """Set the planned territory assignments and wait until they have replicated."""
    return converge(ctx, str(ctx.params["via"]), decode_assignments(ctx.params["assign"]))


def service_check(ctx: StepContext) -> Outcome:
    """Check a restored supercluster: members, every cluster in service, territories as planned."""
    via = str(ctx.params["via"])
    members = tuple(ctx.params["members"])
    view = ctx.client(via).supercluster()
    current = {t.territory_id: t for t in ctx.client(via).territories()}
    wanted = decode_assignments(ctx.params.get("assign") or ())
    missing = sorted(set(members) - view.ids)
    serving = [m.cluster_id for m in view.clusters if m.service_status == "IN_SERVICE"]
    wrong = [f"{tid} is {current[tid].primary}/{current[tid].backup or 'none'} active on "
             f"{current[tid].active or 'no cluster'}, wanted {p}/{b or 'none'}"
             for tid, (p, b) in sorted(wanted.items())
             if tid not in current or (current[tid].primary, current[tid].backup) != (p, b)
             or current[tid].active != p]
    checks = (Check("members", not missing, f"missing {', '.join(missing)}" if missing
                    else ", ".join(sorted(view.ids))),
              Check("in service", set(members) <= set(serving),
                    "in service: " + (", ".join(serving) or "none")),
              Check("territories", not wrong, "; ".join(wrong) or
                    f"{len(wanted)} territories on their planned primary"))
    bad = next((c for c in checks if not c.ok), None)
    summary = (f"{via}'s supercluster serves again: {', '.join(members)} in service" if bad is None
               else f"{CONDITION_TEXT[Condition.SUPERCLUSTER_CHECK]} ({bad.name}: {bad.detail})")
    verdict = Verdict(None if bad is None else Condition.SUPERCLUSTER_CHECK, checks,
                      summary=summary)
    report = SuperclusterReport(f"{via}'s supercluster", verdict, tuple(sorted(view.ids)),
                                tuple(view.warnings))
    if verdict.ok:
        return Outcome.done(summary, data=report.to_json(), reports=(report,))
    if ctx.elapsed_s() < ctx.seconds(ctx.timing.login_grace):
        return Outcome.wait(ctx.poll_s, f"not served yet: {summary}")
    return Outcome.escalate(Condition.SUPERCLUSTER_CHECK.value, summary,
                            {**report.to_json(), "done": ["recovery steps done"]},
                            reports=(report,))
