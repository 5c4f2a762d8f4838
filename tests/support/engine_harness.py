"""Drive whole upgrades in virtual time: real simulator, real DMA client, database and worker.

The simulator is reached in process (its requests adapter: the real DmaClient, no socket) unless
a test asks for loopback HTTP. Virtual time jumps from one due moment of the worker to the next.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from bot.clients import ClientFactory
from bot.clock import FakeClock
from bot.config import Settings, load_settings
from bot.delivery import Delivery
from bot.engine.guide import CHECKLIST_ACKS
from bot.engine.states import HELD, TERMINAL_RUN, RunStatus
from bot.engine.windows import Window
from bot.outbox import Outgoing
from bot.sandbox import build_simulator
from bot.services import Services
from bot.simulator import DmaSimulator
from bot.worker.runner import Worker
from storage import repo
from storage.db import make_engine, make_session_factory, unit_of_work
from storage.models import Run, Step

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
STOP = {s.value for s in (*TERMINAL_RUN, *HELD, RunStatus.FAILED)}
USER, PASSWORD = "admin", "sim-secret-pw"
MUTATING = ("POST", "PUT", "DELETE")
MAX_VISITS = 100  # Worker.tick's default


class RecordingSink:
    """Collects delivered messages, as a Slack channel would show them."""

    def __init__(self) -> None:
        self.sent: list[Outgoing] = []

    def send(self, message: Outgoing) -> str:
        """Keep the message."""
        self.sent.append(message)
        return f"{len(self.sent)}.000100"

    def texts(self) -> list[str]:
        """Every delivered text, in order."""
        return [str(m.payload.get("text", "")) for m in self.sent]


@dataclass
class Harness:
    """One supercluster in a simulator, a database, services and one worker, in virtual time."""

    settings: Settings
    clock: FakeClock
    sim: DmaSimulator
    sessions: sessionmaker[Session]
    services: Services
    worker: Worker
    sink: RecordingSink
    outbox: Delivery

    def plan(self, target: str = "global", version: str = "10.1.0.1", strategy: str = "auto",
             window: Window | None = None) -> str:
        """Plan, submit and approve by two approvers; return the run's name."""
        plan = self.services.plan(target, version, strategy)
        name = self.services.submit(plan, requester="U0REQUESTER", channel="C0UPGRADES",
                                    window=window, require_window=False)
        self.acknowledge(name)
        for user in ("U0APPROVER1", "U0APPROVER2"):
            self.services.approve(name, user, source="cli")
        return name

    def acknowledge(self, name: str, user: str = "U0OPERATOR") -> None:
        """An operator acknowledges every manual checklist item of the run, as the buttons do."""
        for item in CHECKLIST_ACKS:
            self.services.acknowledge(name, item, user)

    def drive(self, name: str, *, max_hours: float = 24.0, stop: Iterable[str] = STOP) -> str:
        """Tick the worker and jump to its next due moment until the run stops."""
        return drive_worker(self.worker, self.clock, deliver=self.outbox.deliver,
                            status=lambda: self.run(name).status, stop=set(stop),
                            max_hours=max_hours, what=name)

    def run(self, name: str) -> Run:
        """The run as stored now."""
        with unit_of_work(self.sessions) as session:
            run = repo.get_run(session=session, ref=name)
            assert run is not None
            session.expunge(run)
            return run

    def steps(self, name: str) -> dict[str, Step]:
        """The run's steps by key."""
        with unit_of_work(self.sessions) as session:
            run = repo.get_run(session=session, ref=name)
            assert run is not None
            steps = repo.steps_of(session=session, run_id=run.id)
            for s in steps:
                session.expunge(s)
            return {s.key: s for s in steps}

    def escalations(self, name: str) -> list[tuple[str, str]]:
        """Open escalations of a run as (cluster, condition)."""
        with unit_of_work(self.sessions) as session:
            run = repo.get_run(session=session, ref=name)
            assert run is not None
            return [(e.cluster, e.condition)
                    for e in repo.open_escalations(session=session, run_id=run.id)]

    def applies(self, cluster: str) -> int:
        """How many install requests a cluster received."""
        return self.sim.count("POST", "/installed-software/upgrade-package/apply", cluster)

    def installs(self, cluster: str, version: str) -> int:
        """How many times the cluster really installed `version` (its upgrade history, server 1)."""
        state = self.sim.state()["clusters"][cluster]
        return sum(1 for row in state["installedSoftware"]["upgradeHistory"]
                   if row["toVersion"] == version and row["server"] == 1)

    def mutations_after(self, index: int) -> list[tuple[str, str, str]]:
        """State-changing requests received after the first `index` requests."""
        return [(r.cluster, r.method, r.path) for r in self.sim.requests[index:]
                if r.method in MUTATING]


def drive_worker(worker: Worker, clock: FakeClock, *, deliver: Callable[[], object],
                 status: Callable[[], str], stop: set[str], max_hours: float,
                 what: str = "the run") -> str:
    """Tick and deliver, then jump virtual time to the worker's next due moment, until stopped.

    With nothing due, time moves one poll interval. A tick that used all its visits may have
    left due steps behind: time stays put then. Passes are bounded as well as virtual time.
    """
    poll = worker.settings.timing.poll_interval
    deadline = clock.now() + timedelta(hours=max_hours)
    for _ in range(2 * int(max_hours * 3600 / poll.total_seconds())):
        visits = worker.tick()
        deliver()
        now = status()
        if now in stop:
            return now
        if clock.now() > deadline:
            break
        if visits < MAX_VISITS:
            clock.set(worker.next_due() or clock.now() + poll)
    raise AssertionError(f"{what} still {status()} after {max_hours} h of virtual time")


def simulated_clients(settings: Settings, sim: DmaSimulator, *, username: str = USER,
                      password: str = PASSWORD) -> ClientFactory:
    """One real DmaClient per cluster, reaching the simulator the way it is served now."""
    return ClientFactory(settings, username=username, password=password, retries=0,
                         urls={c.name: sim.url_for(c.name) for c in settings.all_clusters()},
                         session_factory=None if sim.serving else sim.session)


@contextmanager
def harness(database_url: str, *, config: str = "supercluster.yml",
            faults: Iterable[str] = (), http: bool = False) -> Iterator[Harness]:
    """Build a harness around a fresh migrated database (the simulator over HTTP if `http`)."""
    settings = load_settings(FIXTURES / config)
    clock = FakeClock()
    sim = build_simulator(settings, clock=clock, faults=faults, username=USER, password=PASSWORD)
    engine = make_engine(database_url)
    # Dispose even when the test fails: a leaked PostgreSQL connection is collected later and its
    # warning would fail some unrelated test.
    with serving(sim, http=http), _disposing(engine):
        sessions = make_session_factory(engine)
        clients = simulated_clients(settings, sim)
        services = Services(settings=settings, sessions=sessions, clock=clock, clients=clients)
        worker = Worker(session_factory=sessions, settings=settings, clock=clock,
                        clients=clients, worker_id="test-worker")
        sink = RecordingSink()
        yield Harness(settings, clock, sim, sessions, services, worker, sink,
                      Delivery(sessions, sink, clock=clock, min_interval_s=0,
                               edit_interval_s=0, boards=services.render_board))


@contextmanager
def serving(sim: DmaSimulator, *, http: bool) -> Iterator[DmaSimulator]:
    """Serve the simulator on loopback HTTP if asked (else in process only); stop it after."""
    try:
        if http:
            sim.start()
        yield sim
    finally:
        sim.stop()


@contextmanager
def _disposing(engine: Engine) -> Iterator[Engine]:
    try:
        yield engine
    finally:
        engine.dispose()
