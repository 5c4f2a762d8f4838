"""`upgradebot rehearse`: a whole upgrade against the simulator, printed as the bot would post it.

No Slack and no set-up: a fresh SQLite database in a temporary folder, the bundled example
supercluster (or the given config's inventory) served by the simulator, and virtual time shared
by the simulator and the worker. The driver moves virtual time one poll interval per pass and
then sleeps so that it runs at most `speed` times faster than the wall clock: a busy machine makes
the rehearsal slower, never different.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from bot.clients import ClientFactory
from bot.clock import FakeClock
from bot.config import REHEARSAL_EXAMPLE, Settings, load_settings
from bot.delivery import Delivery
from bot.engine.durations import say_duration
from bot.engine.errors import UserError
from bot.engine.guide import CHECKLIST_ACKS
from bot.engine.planner import Plan, Strategy
from bot.engine.states import STOPPED_RUN, RunStatus
from bot.engine.versions import parse_version
from bot.messages.plain import plain
from bot.outbox import Outgoing
from bot.rehearsal_recovery import MODES, RecoverySummary, print_summary
from bot.rehearsal_recovery import recover as recover_after
from bot.runs.board import cluster_line
from bot.runs.pictures import timeline_png
from bot.sandbox import build_simulator
from bot.services import Services
from bot.simulator import DmaSimulator
from bot.worker.runner import Worker
from storage import repo
from storage.db import make_engine, make_session_factory, unit_of_work, upgrade_database

REQUESTER = "U0REHEARSAL"
OPERATOR = "U0OPERATOR"  # acknowledges the checklist, as an operator would with the buttons
SIM_USER, SIM_PASSWORD = "rehearsal", "rehearsal-only-password"
APPLY = "/installed-software/upgrade-package/apply"


class RehearsalError(UserError):
    """A rehearsal that cannot be set up as asked."""


def bundled_settings() -> Settings:
    """The bundled example: a supercluster of three two-server clusters."""
    return load_settings(REHEARSAL_EXAMPLE)


@dataclass
class ConsoleSink:
    """Prints messages the way they would appear in Slack, board edits at most every so often."""

    out: Callable[[str], None]
    clock: FakeClock
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
        elif message.kind == "upload":
            where = f"file upload to the thread: {message.payload['file']['filename']}"
        else:
            where = "thread reply" if message.thread else f"message to {message.channel}"
        self.out(f"\n{stamp(now, self.start)} ── {where} ──\n{text}\n")
        return f"{self._ts}.000100"


def stamp(now: datetime, start: datetime) -> str:
    """Elapsed virtual time as [+HH:MM:SS]."""
    seconds = int((now - start).total_seconds())
    return f"[+{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}]"


@dataclass(frozen=True)
class Result:
    """What a rehearsal measured."""

    run: str
    status: str
    target: str
    to_version: str
    strategy: str
    virtual_s: float
    estimate_s: float
    outage_s: float | None
    real_s: float
    requests: int
    clusters: dict[str, tuple[str, str, str, int]]  # before, after, state, install requests
    escalations: list[tuple[str, str]]
    breaches: list[str] = field(default_factory=list)
    recovery: RecoverySummary | None = None  # with --recover: the way back, and the network
    dma: dict[str, str] = field(default_factory=dict)  # each cluster as the simulator has it
    board: str = ""  # the status board's last text


def rehearse(*, config: str | None = None, target: str | None = None,
             version: str | None = None, strategy: str = "auto", speed: float = 600.0,
             faults: Sequence[str] = (), out: Callable[[str], None] = print,
             timeout_s: float = 120.0, recover: str | None = None,
             timeline: str | None = None) -> int:
    """Run the rehearsal and print it; return 0 when the upgrade completed, 2 when it stopped.

    With `recover`, 0 when the recovery ended with every cluster in service.
    """
    result = run_rehearsal(config=config, target=target, version=version, strategy=strategy,
                           speed=speed, faults=faults, out=out, timeout_s=timeout_s,
                           recover=recover, timeline=timeline)
    _summary(result, out)
    if result.recovery is not None:
        print_summary(result.recovery, out)
        return 0 if result.recovery.ok else 2
    return 0 if result.status == RunStatus.COMPLETED else 2


def run_rehearsal(*, config: str | None = None, target: str | None = None,
                  version: str | None = None, strategy: str = "auto", speed: float = 600.0,
                  faults: Sequence[str] = (), out: Callable[[str], None] = print,
                  timeout_s: float = 120.0, recover: str | None = None,
                  timeline: str | None = None) -> Result:
    """Run a whole upgrade against the simulator in a throw-away database; return the figures."""
    if recover is not None and recover not in MODES:
        raise RehearsalError(f"--recover must be one of {', '.join(MODES)}, not {recover!r}")
    if timeline is not None and not Path(timeline).resolve().parent.is_dir():
        raise RehearsalError(f"--timeline {timeline}: the folder does not exist")
    settings = load_settings(config) if config else bundled_settings()
    target = target or _default_target(settings)
    version = version or _default_version(settings)
    if speed <= 0:
        raise RehearsalError("--speed must be a positive number (times faster than real time)")
    clock = FakeClock(datetime.now(UTC).replace(microsecond=0))
    sim = build_simulator(settings, clock=clock, faults=faults, username=SIM_USER,
                          password=SIM_PASSWORD)
    with sim, tempfile.TemporaryDirectory(prefix="upgradebot-rehearsal-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'rehearsal.db'}"
        upgrade_database(url)
        engine = make_engine(url)
        try:
            rehearsal = _Rehearsal(settings, sim, make_session_factory(engine), clock, speed,
                                   out)
            result = rehearsal.run(target, version, strategy, faults, timeout_s)
            if timeline is not None:
                Path(timeline).write_bytes(rehearsal.timeline(result.run))
                out(f"timeline picture written to {timeline}")
            if recover is None:
                return result
            summary = recover_after(rehearsal, result.run, recover,
                                    lambda: (clock.now() - rehearsal.start).total_seconds())
            return replace(result, recovery=summary)
        finally:
            engine.dispose()


def _default_target(settings: Settings) -> str:
    names = settings.names()
    if not names:
        raise RehearsalError("the config has no superclusters or clusters to rehearse on")
    return names[0]


def _default_version(settings: Settings) -> str:
    if not settings.packages:
        raise RehearsalError("give a TARGET VERSION, or list a package under packages:")
    return str(max(settings.packages, key=parse_version))


def plan_of_run_needs_acks(settings: Settings) -> bool:
    """True when runs wait for the checklist's acknowledgements (the config's choice)."""
    return settings.checklist.require_acknowledgement


def speed_text(speed: float) -> str:
    """How fast virtual time runs."""
    return f"at most x{speed:g} real time"


class _Rehearsal:
    """One rehearsal: services, a worker and a console outbox around the simulator."""

    def __init__(self, settings: Settings, sim: DmaSimulator, sessions: sessionmaker[Session],
                 clock: FakeClock, speed: float, out: Callable[[str], None]) -> None:
        self.settings, self.sim, self.sessions, self.clock, self.speed, self.out = (
            settings, sim, sessions, clock, speed, out)
        # Retries without a real-time backoff: in virtual time a pause would only be skipped.
        self.clients = ClientFactory(settings, username=SIM_USER, password=SIM_PASSWORD,
                                     urls={c.name: sim.url_for(c.name)
                                           for c in settings.all_clusters()},
                                     retries=1, backoff_s=0.0)
        self.real_start = time.monotonic()
        self.services = Services(settings=settings, sessions=sessions, clock=clock,
                                 clients=self.clients)
        self.start = clock.now()
        self.sink = ConsoleSink(out, clock, self.start)
        # No pacing: the console is not rate-limited, and the sink throttles board edits itself.
        self.outbox = Delivery(sessions, self.sink, clock=clock, min_interval_s=0,
                               edit_interval_s=0, boards=self.services.render_board)

    def say(self, line: str) -> None:
        """Print a progress line stamped with the virtual time."""
        self.out(f"{stamp(self.clock.now(), self.start)} {line}")

    def run(self, target: str, version: str, strategy: str, faults: Sequence[str],
            timeout_s: float) -> Result:
        """Plan, approve, run to the end (or to a stop), and measure."""
        self.out(f"Rehearsal: {target} → {version}, strategy {strategy}, "
                 f"{speed_text(self.speed)}"
                 + (f", faults: {', '.join(faults)}" if faults else "")
                 + f"; simulator at {self.sim.base_url}")
        before = {c.name: self.sim.version_of(c.name) for c in self.settings.all_clusters()}
        self._stage(target, version)
        plan = self.services.plan(target, version, strategy)
        name = self.services.submit(plan, requester=REQUESTER, channel="#dma-upgrades",
                                    require_window=False)
        self.outbox.deliver()
        for item in CHECKLIST_ACKS if plan_of_run_needs_acks(self.settings) else ():
            self.services.acknowledge(name, item, OPERATOR)
            self.say(f"{name}: checklist item {item} acknowledged by {OPERATOR} (rehearsal)")
        approvers = [f"U0APPROVER{i}"
                     for i in range(1, self.settings.slack.approvals_required + 1)]
        for user in approvers:
            self.services.approve(name, user, source="rehearsal", approvers=approvers)
            self.say(f"{name} approved by {user} (rehearsal)")
        if plan.strategy is Strategy.INCREMENTAL:
            self.sim.watch_service()  # no territory may go unserved (the plan says none does)
        worker = Worker(session_factory=self.sessions, settings=self.settings, clock=self.clock,
                        clients=self.clients, worker_id="rehearsal", progress=self.say)
        self.worker, self.timeout_s = worker, timeout_s
        status = self._drive(worker, name, timeout_s)
        self.sink.board_every_s = 0
        self.outbox.deliver()
        return self._measure(name, status, plan, before)

    def timeline(self, name: str) -> bytes:
        """The run's timeline picture (PNG)."""
        with unit_of_work(self.sessions) as session:
            run = repo.get_run(session=session, ref=name)
            assert run is not None
            return timeline_png(session, run, self.clock.now(),
                                max_parallel_installs=self.settings.timing.max_parallel_installs)

    def _stage(self, target: str, version: str) -> None:
        """The guide's time-saver first: the package is uploaded and checked ahead of the plan."""
        def pause(seconds: float) -> None:
            self.clock.advance(seconds)
            time.sleep(seconds / self.speed)

        try:
            rows = self.services.stage(target, version, OPERATOR, pause=pause)
        except UserError as exc:  # no package in the config: the run uploads nothing either
            self.say(f"not staged: {exc}")
            return
        for row in rows:
            self.say(f"staged {row.cluster}: {row.detail}")

    def deliver(self) -> None:
        """Deliver (print) what the outbox holds."""
        self.outbox.deliver()

    def drive_run(self, name: str) -> str:
        """Drive another run (a recovery) with the rehearsal's worker until it stops."""
        status = self._drive(self.worker, name, self.timeout_s)
        self.outbox.deliver()
        return status

    def settle(self, max_s: float = 3 * 3600.0) -> None:
        """Let virtual time pass until no simulated cluster is restarting (bounded)."""
        poll = self.settings.timing.poll_interval.total_seconds()
        waited = 0.0
        while waited < max_s and any(c["restarting"] or c["operation"]
                                     for c in self.sim.state()["clusters"].values()):
            self.clock.advance(poll)
            waited += poll
            self.worker.tick()
            self.outbox.deliver()
        if waited:
            self.say(f"waited {say_duration(waited)} for the restarts under way to end")

    def _drive(self, worker: Worker, name: str, timeout_s: float) -> str:
        deadline = time.monotonic() + timeout_s
        poll = self.settings.timing.poll_interval.total_seconds()
        while True:
            began = time.monotonic()
            worker.tick()
            self.outbox.deliver()
            status, steps = self.services.run_status(name)
            if status is RunStatus.PAUSED and any(
                    key.startswith("people_work:") and state == "blocked"
                    for key, state, _ in steps):
                # The people's work of an incremental upgrade: an operator says it is done.
                self.services.control(name, "resume", OPERATOR)
                self.say(f"{name}: people's work done, continue ({OPERATOR}, rehearsal)")
                continue
            if status in STOPPED_RUN or time.monotonic() > deadline:
                return status
            self.clock.advance(poll)
            time.sleep(max(0.0, poll / self.speed - (time.monotonic() - began)))

    def _measure(self, name: str, status: str, plan: Plan,
                 before: dict[str, str]) -> Result:
        with unit_of_work(self.sessions) as session:
            run = repo.get_run(session=session, ref=name)
            assert run is not None
            steps = repo.steps_of(session=session, run_id=run.id)
            end = run.finished_at or self.clock.now()
            took = (end - (run.started_at or self.start)).total_seconds()
            # The outage starts with the first busy-out: no new call is taken from then on.
            offs = [s.started_at for s in steps
                    if s.kind in ("busy_out", "out_of_service") and s.started_at]
            backs = [s.finished_at for s in steps
                     if s.kind == "return_to_service" and s.finished_at]
            escalations = [(e.cluster, e.condition)
                           for e in repo.open_escalations(session=session, run_id=run.id)]
            # The phase the board shows for each cluster, whatever happened elsewhere.
            states = {c: cluster_line(c, [s for s in steps if s.cluster == c], end, 0.0).state
                      for c in plan.order}
        real = time.monotonic() - self.real_start
        return Result(
            run=name, status=status, target=plan.target, to_version=plan.to_version,
            strategy=plan.strategy.value, virtual_s=took, estimate_s=plan.total_estimate_s,
            outage_s=(max(backs) - min(offs)).total_seconds()
            if offs and backs and plan.strategy is Strategy.FULL_OUTAGE else None,
            real_s=real, requests=len(self.sim.requests),
            clusters={c: (before[c], self.sim.version_of(c), states[c],
                          self.sim.count("POST", APPLY, c)) for c in plan.order},
            escalations=escalations, breaches=self.sim.breaches,
            dma={c: self._true_state(c) for c in plan.order},
            board=self.sink.boards[-1] if self.sink.boards else "")

    def _true_state(self, cluster: str) -> str:
        """The cluster as it is (the simulator's truth): service, membership, servers up."""
        state = self.sim.state()["clusters"][cluster]
        nodes = state["highAvailability"]["nodeStateList"]
        up = sum(1 for n in nodes if n["state"] == "UP")
        where = (f"in {state['supercluster']}" if state["membership"] == "SUPERCLUSTERED"
                 else "stand-alone")
        return (f"{state['serviceStatus'].lower().replace('_', ' ')}, {where}, "
                + ("restarting (not answering)" if state["restarting"]
                   else f"{up} of {state['servers']} servers up"))


def _summary(result: Result, out: Callable[[str], None]) -> None:
    out("=" * 72)
    out(f"{result.run} {RunStatus(result.status).words} — {result.strategy} upgrade of "
        f"{result.target} to {result.to_version}")
    out(f"  duration {say_duration(result.virtual_s)} (estimate {say_duration(result.estimate_s)})"
        + (f"; full outage {say_duration(result.outage_s)}" if result.outage_s is not None
           else ""))
    for cluster, (old, new, state, installs) in result.clusters.items():
        truth = f"; now {result.dma[cluster]}" if cluster in result.dma else ""
        out(f"  {cluster}: {old} → {new}; {state}; install requests {installs}{truth}")
    for cluster, condition in result.escalations:
        out(f"  escalation: {cluster}: {condition}")
    out(f"  guide breaches (installs with calls up, territories unserved): "
        f"{len(result.breaches) or 'none'}")
    for breach in result.breaches:
        out(f"    {breach}")
    out(f"  {result.requests} API requests to the simulator; {result.real_s:.1f} s of real time")
    if result.board:
        out("final status board:")
        out("\n".join(f"  {line}" for line in plain(result.board).splitlines()))
