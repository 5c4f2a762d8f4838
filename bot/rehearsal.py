"""`upgradebot rehearse`: a whole upgrade against the simulator, printed as the bot would post it.

No Slack and no set-up: a fresh SQLite database in a temporary folder, the bundled example
supercluster (or the given config's inventory) served by the simulator, and time running `speed`
times faster than the wall clock for the simulator and the worker alike.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from bot.clients import ClientFactory
from bot.clock import ScaledClock
from bot.config import REHEARSAL_EXAMPLE, Settings, load_settings
from bot.engine.states import HELD, TERMINAL_RUN, RunStatus
from bot.engine.versions import parse_version
from bot.messages import fmt_duration
from bot.outbox import Outbox, Outgoing
from bot.sandbox import build_simulator
from bot.services import Services
from bot.worker.runner import Worker
from storage import repo
from storage.db import make_engine, make_session_factory, unit_of_work, upgrade_database

REQUESTER = "U0REHEARSAL"
SIM_USER, SIM_PASSWORD = "rehearsal", "rehearsal-only-password"
APPLY = "/installed-software/upgrade-package/apply"
STOP = {s.value for s in (*TERMINAL_RUN, *HELD, RunStatus.FAILED)}


def bundled_settings() -> Settings:
    """The bundled example: a supercluster of three two-server clusters."""
    return load_settings(REHEARSAL_EXAMPLE)


@dataclass
class ConsoleSink:
    """Prints messages the way they would appear in Slack, board edits at most every so often."""

    out: Callable[[str], None]
    clock: ScaledClock
    start: datetime
    board_every_s: float = 900.0
    _last_board: datetime | None = None
    _ts: int = 0
    boards: list[str] = field(default_factory=list)

    def send(self, message: Outgoing) -> str | None:
        """Print one message."""
        self._ts += 1
        text = str(message.payload.get("text", ""))
        now = self.clock.now()
        if message.kind == "update":
            self.boards.append(text)
            due = self._last_board is None or (now - self._last_board).total_seconds() >= \
                self.board_every_s
            if not due:
                return None
            self._last_board = now
            where = "status board (edit of the plan message)"
        else:
            where = "thread reply" if message.thread else f"message to {message.channel}"
        self.out(f"\n{stamp(now, self.start)} ── {where} ──\n{text}\n")
        return f"{self._ts}.000100"


def stamp(now: datetime, start: datetime) -> str:
    """Elapsed virtual time as [+HH:MM:SS]."""
    seconds = int((now - start).total_seconds())
    return f"[+{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}]"


def rehearse(*, config: str | None = None, target: str | None = None,
             version: str | None = None, strategy: str = "auto", speed: float = 600.0,
             faults: Sequence[str] = (), out: Callable[[str], None] = print,
             timeout_s: float = 120.0) -> int:
    """Run the rehearsal; return 0 when the upgrade completed, 2 when it stopped."""
    settings = load_settings(config) if config else bundled_settings()
    target = target or _default_target(settings)
    version = version or _default_version(settings)
    clock = ScaledClock(speed)
    sim = build_simulator(settings, clock=clock, faults=faults, username=SIM_USER,
                          password=SIM_PASSWORD)
    with sim, tempfile.TemporaryDirectory(prefix="upgradebot-rehearsal-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'rehearsal.db'}"
        upgrade_database(url)
        engine = make_engine(url)
        try:
            return _run(settings, sim, engine, clock, target, version, strategy, faults, out,
                        timeout_s)
        finally:
            engine.dispose()


def _default_target(settings: Settings) -> str:
    names = settings.names()
    if not names:
        raise ValueError("the config has no superclusters or clusters to rehearse on")
    return names[0]


def _default_version(settings: Settings) -> str:
    if not settings.packages:
        raise ValueError("give a TARGET VERSION, or list a package under packages:")
    return str(max(settings.packages, key=parse_version))


def _run(settings: Settings, sim, engine, clock: ScaledClock, target: str,  # type: ignore[no-untyped-def]
         version: str, strategy: str, faults: Sequence[str], out: Callable[[str], None],
         timeout_s: float) -> int:
    sessions = make_session_factory(engine)
    clients = ClientFactory(settings, username=SIM_USER, password=SIM_PASSWORD,
                            urls={c.name: sim.url_for(c.name) for c in settings.all_clusters()},
                            retries=1)
    services = Services(settings=settings, sessions=sessions, clock=clock, clients=clients)
    start = clock.now()
    out(f"Rehearsal: {target} → {version}, strategy {strategy}, {speed_text(clock.speed)}"
        + (f", faults: {', '.join(faults)}" if faults else "") + f"; simulator at {sim.base_url}")
    before = {c.name: sim.version_of(c.name) for c in settings.all_clusters()}
    plan = services.plan(target, version, strategy)
    name = services.submit(plan, requester=REQUESTER, channel="#dma-upgrades",
                           require_window=False)
    sink = ConsoleSink(out, clock, start)
    outbox = Outbox(sessions, sink, min_interval_s=0)
    outbox.deliver(clock.now())
    approvers = [f"U0APPROVER{i}" for i in range(1, settings.slack.approvals_required + 1)]
    for user in approvers:
        services.approve(name, user, source="rehearsal", approvers=approvers)
        out(f"{stamp(clock.now(), start)} {name} approved by {user} (rehearsal)")
    worker = Worker(session_factory=sessions, settings=settings, clock=clock, clients=clients,
                    worker_id="rehearsal",
                    progress=lambda line: out(f"{stamp(clock.now(), start)} {line}"))
    status = _drive(sessions, worker, outbox, clock, name, timeout_s)
    sink.board_every_s = 0
    outbox.deliver(clock.now())
    _summary(sessions, settings, sim, out, name, status, before, start, clock, plan)
    return 0 if status == RunStatus.COMPLETED.value else 2


def speed_text(speed: float) -> str:
    """How fast virtual time runs."""
    return f"time x{speed:g}"


def _drive(sessions, worker: Worker, outbox: Outbox, clock: ScaledClock,  # type: ignore[no-untyped-def]
           name: str, timeout_s: float) -> str:
    deadline = time.monotonic() + timeout_s
    pause = min(0.05, clock.real_seconds(worker.settings.timing.poll_interval.total_seconds()) / 4)
    while True:
        worker.tick()
        outbox.deliver(clock.now())
        with unit_of_work(sessions) as session:
            run = repo.get_run(session=session, ref=name)
            assert run is not None
            status = run.status
        if status in STOP or time.monotonic() > deadline:
            return status
        time.sleep(pause)


def _summary(sessions, settings: Settings, sim, out: Callable[[str], None], name: str,  # type: ignore[no-untyped-def]
             status: str, before: dict[str, str], start: datetime, clock: ScaledClock,
             plan) -> None:  # type: ignore[no-untyped-def]
    with unit_of_work(sessions) as session:
        run = repo.get_run(session=session, ref=name)
        assert run is not None
        steps = repo.steps_of(session=session, run_id=run.id)
        end = run.finished_at or clock.now()
        took = (end - (run.started_at or start)).total_seconds()
        offs = [s.started_at for s in steps if s.kind == "out_of_service" and s.started_at]
        backs = [s.finished_at for s in steps if s.kind == "return_to_service" and s.finished_at]
        outage = (max(backs) - min(offs)).total_seconds() if offs and backs else None
        escalations = repo.open_escalations(session=session, run_id=run.id)
    out("=" * 72)
    out(f"{name} {status.replace('_', ' ')} — {plan.strategy.value} upgrade of {plan.target} to "
        f"{plan.to_version}")
    out(f"  duration {fmt_duration(took)} (estimate {fmt_duration(plan.total_estimate_s)})"
        + (f"; full outage {fmt_duration(outage)}" if outage is not None else ""))
    for cluster in plan.order:
        mine = [s for s in steps if s.cluster == cluster]
        state = next((s.status for s in mine if s.status not in ("done", "skipped")), "done")
        out(f"  {cluster}: {before.get(cluster)} → {sim.version_of(cluster)}; "
            f"{'verified' if state == 'done' else state}; "
            f"install requests {sim.count('POST', APPLY, cluster)}")
    for esc in escalations:
        out(f"  escalation: {esc.cluster}: {esc.condition}")
    real = clock.real_seconds((clock.now() - start).total_seconds())
    out(f"  {len(sim.requests)} API requests to the simulator; {real:.1f} s of real time")
