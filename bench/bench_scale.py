"""Engine speed and scale (issue 9): outage against the physical bound, N concurrent runs, claims.

Run: .venv/bin/python bench/bench_scale.py [--sizes 1,10,50,100] [--repeats 3]
     [--skip outage,runs,claims,procs]
PostgreSQL figures are added when BENCH_DATABASE_URL (or TEST_DATABASE_URL) names a server on
which the script may create and drop scratch databases. Everything runs in real time against the
simulator at x300 (a 35-minute install takes 7 s), the bot polling every 0.2 s.
"""

from __future__ import annotations

import argparse
import logging
import random
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from scale_claims import claim_throughput  # noqa: E402
from scale_setup import (  # noqa: E402
    APPROVER,
    SPEED,
    ClaimTimer,
    database,
    pg_base,
    seed_runs,
    standalone_settings,
    supercluster_settings,
)

from bot.clients import ClientFactory  # noqa: E402
from bot.clock import SystemClock  # noqa: E402
from bot.config import Settings  # noqa: E402
from bot.engine.guide import CHECKLIST_ACKS  # noqa: E402
from bot.engine.states import STOPPED_RUN  # noqa: E402
from bot.sandbox import build_simulator  # noqa: E402
from bot.services import Services  # noqa: E402
from bot.simulator.kinds import SimTimings  # noqa: E402
from bot.worker.runner import Worker  # noqa: E402
from bot.worker.scheduler import Deadline, start_worker, stop_worker  # noqa: E402
from storage import repo  # noqa: E402
from storage.db import make_engine, make_session_factory, unit_of_work, upgrade_database  # noqa: E402
from storage.models import AuditEntry, Run, Step  # noqa: E402


class Bed:
    """A simulator, a migrated database, services and a running worker, in real time."""

    def __init__(self, settings: Settings, url: str, *, http: bool = False,
                 sim_url: str | None = None) -> None:
        self.settings, self.clock = settings, SystemClock()
        self.sim = None
        if sim_url is None:
            self.sim = build_simulator(settings, clock=self.clock, speed=SPEED, username="u",
                                       password="p")
            if http:
                self.sim.start()
            sim_url = self.sim.base_url
        self.sim_url = sim_url
        upgrade_database(url)
        self.engine = make_engine(url)
        self.sessions = make_session_factory(self.engine)
        in_process = self.sim is not None and not http
        self.clients = ClientFactory(settings, username="u", password="p", retries=None,
                                     urls={c.name: f"{sim_url}/{c.name}/api/rest"
                                           for c in settings.all_clusters()},
                                     session_factory=self.sim.session if in_process and self.sim
                                     else None)
        self.services = Services(settings=settings, sessions=self.sessions, clock=self.clock,
                                 clients=self.clients)

    def stage(self) -> None:
        """Upload the package everywhere first, as `/upgrade stage` does.

        A cluster shows its install estimate once the package is there: the plan then knows it.
        """
        package = self.settings.packages["10.1.0.1"]
        for c in self.settings.all_clusters():
            self.clients(c.name).upload_package_url(package.url, package.sha1)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not all(
                self.clients(c.name).installed_software().upgrade_version
                for c in self.settings.all_clusters()):
            time.sleep(0.05)

    def submit(self, target: str, *, approve: bool = True) -> str:
        """Plan, submit and (unless told not to) approve a run; return its name."""
        plan = self.services.plan(target, "10.1.0.1", "auto")
        name = self.services.submit(plan, requester="U0REQ", channel="C0BENCH",
                                    require_window=False)
        for item in CHECKLIST_ACKS:  # the guide's manual items, as an operator's buttons do
            self.services.acknowledge(name, item, "U0OPERATOR")
        if approve:
            self.services.approve(name, APPROVER, source="cli", approvers=[APPROVER])
        return name

    def run_until_done(self, names: list[str], timeout_s: float,
                       worker_id: str = "bench") -> tuple[float, float, int]:
        """Start a worker; wait until every run stops; return wall s, CPU s, step transitions."""
        completed: set[str] = set()
        all_done = threading.Event()

        def progress(line: str) -> None:
            # The worker says when a run completes: no need to poll the database for it (the
            # polling would cost the process CPU it is measured on).
            if " completed in " in line:
                completed.add(line.split()[0])
                if completed >= set(names):
                    all_done.set()

        worker = Worker(session_factory=self.sessions, settings=self.settings, clock=self.clock,
                        clients=self.clients, worker_id=worker_id, progress=progress)
        before = self._transitions()
        cpu0, t0 = time.process_time(), time.perf_counter()
        scheduler, _ = start_worker(worker)
        try:
            deadline = t0 + timeout_s
            # A run that stops otherwise (failed, escalated) is seen by a slow poll.
            while (time.perf_counter() < deadline and not all_done.is_set()
                   and not self._all_stopped(names)):
                all_done.wait(0.5)
        finally:
            wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
            stop_worker(scheduler, worker, Deadline.after(5))
        if not self._all_stopped(names):
            raise RuntimeError(f"runs still going after {timeout_s} s")
        return wall, cpu, self._transitions() - before

    def _all_stopped(self, names: list[str]) -> bool:
        with unit_of_work(self.sessions) as session:
            ids = [int(n.lstrip("R")) for n in names]
            statuses = session.scalars(select(Run.status).where(Run.id.in_(ids))).all()
        return len(statuses) == len(names) and all(s in STOPPED_RUN for s in statuses)

    def _transitions(self) -> int:
        with unit_of_work(self.sessions) as session:
            return int(session.scalar(select(func.count()).select_from(AuditEntry)
                                      .where(AuditEntry.step_id.is_not(None))) or 0)

    def steps(self, name: str) -> list[Step]:
        """The run's steps."""
        with unit_of_work(self.sessions) as session:
            run = repo.get_run(session=session, ref=name)
            assert run is not None
            return repo.steps_of(session=session, run_id=run.id)

    def close(self) -> None:
        """Dispose of the engine, stop the simulator."""
        self.engine.dispose()
        if self.sim is not None:
            self.sim.stop()


# -- (a) the full outage against the physical bound ------------------------------------------


def _bound_s(installs_min: list[float], joins: int = 1) -> float:
    """Leave + log in + longest install + log in + join(s).

    With one join no order can do better; the issue's figure counts every join (they go one at
    a time, and the last clusters are ready at about the same moment).
    """
    t = SimTimings()
    return (t.leave_minutes + 2 * t.auth_delay_minutes + max(installs_min)
            + joins * t.join_minutes) * 60 / SPEED


def _manual_s(installs_min: list[float]) -> float:
    """The guide done by hand in configuration order, with no time lost between steps."""
    t = SimTimings()
    leave, auth, join = t.leave_minutes, t.auth_delay_minutes, t.join_minutes
    seed, *others = installs_min
    ready = [(i + 1) * leave + auth + m + auth for i, m in enumerate(others)]
    at = len(others) * leave + auth + seed + auth
    for r in ready:
        at = max(at, r) + join
    return at * 60 / SPEED


def outage(installs_min: list[float]) -> None:
    """One full-outage run on SQLite; print its outage against the bound and the manual figure."""
    with tempfile.TemporaryDirectory() as tmp, database("sqlite") as url:
        bed = Bed(supercluster_settings(Path(tmp), installs_min, SPEED), url)
        try:
            bed.stage()
            name = bed.submit("sc")
            wall, _cpu, _n = bed.run_until_done([name], timeout_s=180)
            steps = {s.key: s for s in bed.steps(name)}
        finally:
            bed.close()
    offs = [s.started_at for s in steps.values() if s.kind == "out_of_service" and s.started_at]
    backs = [s.finished_at for s in steps.values()
             if s.kind == "return_to_service" and s.finished_at]
    took = (max(backs) - min(offs)).total_seconds() if offs and backs else float("nan")
    bound, manual = _bound_s(installs_min), _manual_s(installs_min)
    every = _bound_s(installs_min, joins=len(installs_min) - 1)
    print(f"| {len(installs_min)} ({'/'.join(f'{m:g}' for m in installs_min)} min) | "
          f"{took:.1f} | {bound:.1f} | {took / bound:.2f} | {every:.1f} | {took / every:.2f} | "
          f"{manual:.1f} | {wall:.1f} |")
    start = min(offs) if offs else None
    if start is not None:
        marks = []
        for kind in ("remove", "install", "join"):
            for s in sorted((s for s in steps.values() if s.kind == kind and s.started_at),
                            key=lambda s: s.started_at or start):
                assert s.started_at is not None
                marks.append(f"{kind} {s.cluster} +{(s.started_at - start).total_seconds():.1f}")
        print(f"|   | {'; '.join(marks)} |||||||")


# -- (b) N concurrent stand-alone runs in one process ----------------------------------------


def concurrent_runs(kind: str, n: int, install_min: float, repeats: int = 1) -> float:
    """N stand-alone basic upgrades at once; wall time, CPU per step transition, claim time.

    Repeated `repeats` times on fresh databases; the run with the median wall time is shown,
    with the range (on 2 cores a database server and the bot share the CPU: runs vary).
    Returns the median wall time.
    """
    results = []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as tmp, database(kind) as url:
            bed = Bed(standalone_settings(Path(tmp), n, install_min, SPEED), url)
            try:
                names = [bed.submit(f"s{i + 1}") for i in range(n)]
                with ClaimTimer() as timer:
                    wall, cpu, transitions = bed.run_until_done(names, timeout_s=900)
            finally:
                bed.close()
            results.append((wall, cpu, transitions, timer.mean_ms(), len(timer.times)))
    results.sort()
    wall, cpu, transitions, claim_ms, claims = results[len(results) // 2]
    per = 1000 * cpu / transitions if transitions else float("nan")
    spread = f"{results[0][0]:.1f} to {results[-1][0]:.1f}" if repeats > 1 else "-"
    print(f"| {kind} | {n} | {wall:.1f} | {spread} | {cpu:.1f} | {transitions} | {per:.1f} | "
          f"{claim_ms:.1f} | {claims} |")
    return wall


# -- (c) claim latency at 1 and 200 running runs ---------------------------------------------


def _seed_waiting(url: str, runs: int) -> None:
    """Running runs, each with a step polling a restarting cluster (due in an hour)."""
    seed_runs(url, runs, 6, chained=True)
    engine = make_engine(url)
    try:
        with unit_of_work(make_session_factory(engine)) as session:
            session.execute(update(Step).where(Step.seq == 0).values(status="done"))
            session.execute(update(Step).where(Step.seq == 1).values(
                status="active", next_check_at=datetime.now(UTC) + timedelta(hours=1)))
    finally:
        engine.dispose()


def claim_latency(kind: str, runs: int, rounds: int = 60) -> float:
    """Mean ms of a claim that finds the one due step among `runs` running runs."""
    with database(kind) as url:
        upgrade_database(url)
        _seed_waiting(url, runs)
        engine = make_engine(url)
        sessions = make_session_factory(engine)
        with unit_of_work(sessions) as session:
            probes = list(session.scalars(select(Step.id).where(Step.seq == 1)))
        pick = random.Random(9)
        with ClaimTimer() as timer:
            for _ in range(rounds):
                now = datetime.now(UTC)
                step_id = pick.choice(probes)  # the due step is in any of the runs
                with unit_of_work(sessions) as session:
                    session.execute(update(Step).where(Step.id == step_id)
                                    .values(next_check_at=now))
                with unit_of_work(sessions) as session:
                    got = _claim_one(session, now)
                    assert got is not None and got.id == step_id, "the due step was not claimed"
                    repo.release_step(session=session, step=got, worker_id="bench", now=now,
                                      next_check_at=now + timedelta(hours=1))
        engine.dispose()
    times = sorted(timer.times)[: max(1, len(timer.times) * 9 // 10)]  # drop the slowest 10 %
    return 1000 * sum(times) / len(times)


def _claim_one(session: Session, now: datetime) -> Step | None:
    lease = timedelta(minutes=1)
    if hasattr(repo, "claim_due_steps"):
        got = repo.claim_due_steps(session=session, worker_id="bench", now=now, lease=lease,
                                   limit=1)
        return got[0] if got else None
    return repo.claim_next_step(session=session, worker_id="bench", now=now,  # type: ignore
                                lease=lease)


# -- (d) two processes against one on PostgreSQL ---------------------------------------------


def processes(n_runs: int, install_min: float, procs: int) -> float:
    """Wall s for `n_runs` stand-alone upgrades shared by `procs` worker processes.

    One simulator serves every cluster over loopback HTTP from this process; each child is a
    worker process of its own on the same PostgreSQL database.
    """
    with tempfile.TemporaryDirectory() as tmp, database("postgresql") as url:
        settings = standalone_settings(Path(tmp), n_runs, install_min, SPEED)
        bed = Bed(settings, url, http=True)
        try:
            for i in range(n_runs):
                bed.submit(f"s{i + 1}")
            cfg = next(Path(tmp).glob("bench-*.yml"))
            t0 = time.perf_counter()
            children = [subprocess.Popen([sys.executable, __file__, "--child", url, str(cfg),
                                          bed.sim_url, f"p{i}"]) for i in range(procs)]
            codes = [c.wait(timeout=900) for c in children]
            took = time.perf_counter() - t0
        finally:
            bed.close()
        if any(codes):
            raise RuntimeError(f"worker processes failed: {codes}")
        return took


def child(url: str, cfg: str, sim_url: str, wid: str) -> None:
    """A worker process on the shared database and the parent's simulator, until all stop."""
    from bot.config import load_settings
    bed = Bed(load_settings(cfg), url, sim_url=sim_url)
    with unit_of_work(bed.sessions) as session:
        names = [f"R{i}" for i in session.scalars(select(Run.id))]
    bed.run_until_done(names, timeout_s=900, worker_id=wid)
    bed.close()


def main() -> None:
    """Print every figure."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="1,10,50,100")
    parser.add_argument("--skip", default="")
    parser.add_argument("--repeats", type=int, default=3, help="runs per size in (b)")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    logging.getLogger("apscheduler").setLevel(logging.ERROR)
    if args.child:
        child(*args.child)
        return
    skip = set(args.skip.split(","))
    kinds = ["sqlite", *(["postgresql"] if pg_base() else [])]
    if "outage" not in skip:
        print("## (a) Full outage against the physical bound (simulator x300, SQLite)")
        print("| clusters (installs) | outage s | bound s (1 join) | ratio | bound s (all joins)"
              " | ratio | manual s | run s |")
        print("|---|---|---|---|---|---|---|---|")
        outage([50.0, 30.0, 70.0])
        outage([50.0, 30.0, 70.0, 40.0, 60.0])
        print()
    if "runs" not in skip:
        print("## (b) N concurrent stand-alone upgrades in one process (install 15 min = 3 s)")
        print(f"(median of {args.repeats} runs each)")
        print("| database | N | wall s | range s | CPU s | step transitions | CPU ms/transition |"
              " claim ms | claims |")
        print("|---|---|---|---|---|---|---|---|---|")
        sizes = [int(x) for x in args.sizes.split(",")]
        walls = {(kind, n): concurrent_runs(kind, n, 15.0, args.repeats)
                 for kind in kinds for n in sizes}
        for kind in kinds:
            most, least = max(sizes), min(sizes)
            print(f"- {kind}: {most} runs vs {least}: "
                  f"{walls[kind, most] / walls[kind, least]:.2f} x the wall time")
        print()
    if "claims" not in skip:
        print("## (c) Claim latency with 1 and 200 running runs (one step due)")
        print("| database | 1 run ms | 200 runs ms | ratio |")
        print("|---|---|---|---|")
        for kind in kinds:
            one, many = claim_latency(kind, 1), claim_latency(kind, 200)
            print(f"| {kind} | {one:.1f} | {many:.1f} | {many / one:.2f} |")
        print()
    if "procs" not in skip and pg_base():
        print("## (d) Worker processes on PostgreSQL (60 stand-alone upgrades)")
        one, two = processes(60, 15.0, 1), processes(60, 15.0, 2)
        print(f"- 60 upgrades (not enough to keep one process busy): one process {one:.1f} s,"
              f" two processes {two:.1f} s: throughput ratio {one / two:.2f}")
        one, two = claim_throughput(1), claim_throughput(2)
        print(f"- claim + finish + release, 40 runs x 20 steps, saturated: one process "
              f"{one:.0f} steps/s, two processes {two:.0f} steps/s: ratio {two / one:.2f}")


if __name__ == "__main__":
    main()
