"""`retry` after a manual rollback: say so, and offer to upgrade the cluster again or to restore.

An operator who rolled a cluster back by hand leaves it on the version it was upgraded from.
Verifying it against the target again would escalate again on the same facts; instead `retry`
says what it found and offers the ways on. `/upgrade retry RUN reinstall` continues the run by
uploading and installing the target on that cluster again, then verifying as before.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime

from sqlalchemy.orm import Session

from bot import messages
from bot.dma.client import DmaClient
from bot.dma.errors import DmaError
from bot.engine.plans import RECOVERY, StepKind
from bot.engine.states import STOPPED_STEP, StepEvent, StepStatus
from bot.engine.versions import same_version
from bot.runs.plans import plan_of
from bot.runs.posting import post
from bot.runs.transitions import transition_step
from storage import repo
from storage.models import Run

K = StepKind


def candidates(session: Session, run: Run) -> tuple[str, dict[str, str]]:
    """The run's target version, and its stopped clusters with the version each ran before."""
    plan = plan_of(run)
    if plan.strategy in RECOVERY:
        return run.to_version, {}
    before = dict(plan.from_versions)
    stopped = {s.cluster for s in repo.steps_of(session=session, run_id=run.id)
               if s.status in STOPPED_STEP and s.cluster}
    return run.to_version, {c: before[c] for c in sorted(stopped) if c in before}


def rolled_back_by_hand(target: str, before: Mapping[str, str],
                        clients: Callable[[str], DmaClient]) -> dict[str, str]:
    """Those clusters that run the version they were upgraded from again (read now)."""
    found: dict[str, str] = {}
    for cluster, old in before.items():
        try:
            version = clients(cluster).installed_software().system_version
        except DmaError:
            continue  # not answering is not a rollback: retry looks at it as before
        if same_version(version, old) and not same_version(version, target):
            found[cluster] = version
    return found


def offer(session: Session, run: Run, user: str, now: datetime,
          found: Mapping[str, str]) -> str:
    """Say that a cluster was rolled back by hand, and name the ways on (nothing changes)."""
    which = ", ".join(f"{c} runs {v} again" for c, v in found.items())
    text = (f"{which}: the version it was upgraded from (rolled back by hand?). Verifying it "
            f"against {run.to_version} would only escalate again on the same facts, so the run "
            f"stays as it is. Ways on: `/upgrade retry {run.name} reinstall` continues the run "
            f"by upgrading {', '.join(found)} again; `/upgrade restore {run.name}` plans the way "
            "back to a served network.")
    repo.audit(session=session, at=now, actor=user, run_id=run.id,
               action="operator.retry.rolled_back_by_hand", detail={"clusters": dict(found)})
    post(session, run, messages.notice(run.name, "↩️", text, actions=("abort",)), now)
    return f"{run.name}: {text}"


def reinstall(session: Session, run: Run, user: str, now: datetime,
              found: Mapping[str, str]) -> str:
    """Upload and install the target again on each cluster found, then verify it as planned."""
    steps = repo.steps_of(session=session, run_id=run.id)
    seq = max((s.seq for s in steps), default=0)
    by_key = {s.key: s for s in steps}
    for cluster in found:
        verify = by_key.get(f"{K.VERIFY.value}:{cluster}")
        if verify is None or verify.status not in STOPPED_STEP:
            continue
        rows = repo.add_steps(session=session, run=run, steps=[
            _step(seq + 1, K.UPLOAD, "upload-again", cluster, (),
                  f"Upload the {run.to_version} package to {cluster} again",
                  version=run.to_version),
            _step(seq + 2, K.INSTALL, "install-again", cluster, (f"upload-again:{cluster}",),
                  f"Install {run.to_version} on {cluster} again", version=run.to_version),
            _step(seq + 3, K.WAIT_LOGIN, "wait_login-again", cluster,
                  (f"install-again:{cluster}",),
                  f"Wait for {cluster} to restart, then log back in",
                  applied_by="install-again")])
        seq += len(rows)
        verify.deps = [*verify.deps, f"wait_login-again:{cluster}"]
        transition_step(session, verify, StepEvent.RETRY, now=now, actor=user,
                        note="upgrade again after a manual rollback")
        verify.data = {**(verify.data or {}), "retry_at": now.isoformat()}
        # Verified again only once the cluster is back from the new install: parked until
        # its new dependency finishes (claims check dependencies of steps not yet started).
        verify.next_check_at = repo.PARKED
    repo.resolve_escalations(session=session, run_id=run.id, at=now, by=user)
    post(session, run, messages.notice(
        run.name, "🔁", f"{messages.mention(user)} asked to upgrade "
        f"{', '.join(found)} to {run.to_version} again (after a manual rollback)"), now)
    return f"{run.name}: upgrading {', '.join(found)} again"


def _step(seq: int, kind: StepKind, name: str, cluster: str, deps: tuple[str, ...], title: str,
          **params: str) -> dict[str, object]:
    return {"seq": seq, "key": f"{name}:{cluster}", "kind": kind.value, "cluster": cluster,
            "deps": list(deps), "params": params, "estimate_s": 0.0, "title": title,
            "status": StepStatus.PENDING}

