"""SIGTERM or SIGINT stops `upgradebot worker` and `upgradebot serve` (HTTP and Socket Mode) within
STOP_BUDGET_S with status 0, whatever they are doing: the date-job sync at start, a visit to a
cluster that does not answer, or anything at a random moment. A visit abandoned at the deadline
keeps its lease, and another worker finishes the step without a second install request.

Every process gets its own copy of a database holding a running run on `lab` (which, but for
the stops right at start, answers nothing in time) and, so that date jobs exist, plans on
`global` awaiting approval in a window tomorrow. Processes run a few at a time; the random
moments are seeded.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.clients import ClientFactory
from bot.clock import SystemClock
from bot.config import load_settings_text
from bot.engine.guide import CHECKLIST_ACKS
from bot.engine.windows import Window
from bot.services import Services
from bot.simulator import DmaSimulator
from bot.worker.scheduler import STOP_BUDGET_S
from storage import repo
from storage.db import make_engine, make_session_factory, unit_of_work, upgrade_database
from storage.models import Run, StepClaim
from tests.e2e.bot_process import CONFIG, ROOT, SECRET, SIM_PASSWORD, SIM_USER, simulator
from tests.support.slack_double import SlackDouble
from tests.support.slow_cluster import SlowCluster
from tests.support.socket_double import SocketModeDouble
from tests.support.workspace import APPROVERS, populate

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

SEED = 20260611
PARALLEL = 2  # bot processes started at once: more starve each other on 2 busy cores
PLANS_IN_WINDOWS = 60  # so that the date-job sync takes a while
APPLY = "/installed-software/upgrade-package/apply"
SYNC_RUNNING = 'Running job "sync_date_jobs_job'
SYNC_DONE = 'Job "sync_date_jobs_job'
READY = r"worker \S+ running|listening on http://|connected to Slack"
DELAY_UP_TO_S = {"sync": 0.0, "ready": 0.0, "visit": 0.5, "random": 2.5}  # after the moment


@dataclass(frozen=True)
class Trial:
    """One process stopped once: how it runs, which signal, and when it is sent."""

    mode: str  # worker | http | socket
    signum: signal.Signals
    moment: str  # sync | ready | visit | random
    delay_s: float  # after the moment


@dataclass
class Outcome:
    """How one stop went."""

    trial: Trial
    seconds: float
    status: int | None
    in_sync: bool
    output: list[str] = field(default_factory=list)

    @property
    def gave_up(self) -> bool:
        """True when the process said it abandoned something."""
        return any("stopped without waiting for" in line for line in self.output)

    def failed(self) -> bool:
        """True unless it exited with status 0 within the budget."""
        return self.status != 0 or self.seconds >= STOP_BUDGET_S


@dataclass
class Bot:
    """A bot process of one trial, its output collected line by line."""

    proc: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, pattern: str, timeout: float) -> None:
        """Wait for a line matching `pattern`; fail showing the output."""
        deadline, seen = time.monotonic() + timeout, 0
        while True:
            new = self.lines[seen:]
            if any(re.search(pattern, line) for line in new):
                return
            seen += len(new)
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"no {pattern!r}:\n" + "\n".join(self.lines[-30:]))
            time.sleep(0.005)

    def stop(self, signum: signal.Signals) -> tuple[float, int | None]:
        """Send the signal; return (seconds to exit, status), waiting a little over the budget."""
        started = time.monotonic()
        self.proc.send_signal(signum)
        try:
            status: int | None = self.proc.wait(timeout=STOP_BUDGET_S + 3)
        except subprocess.TimeoutExpired:
            status = None
        return time.monotonic() - started, status

    def close(self) -> None:
        """Kill it if it is still there; collect the rest of its output."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self._reader.join(timeout=5)
        assert self.proc.stdout is not None
        self.proc.stdout.close()


def start(mode: str, folder: Path, env: dict[str, str], name: str) -> Bot:
    """Start `python -m bot -v worker` (its log shows the sync) or `python -m bot serve`."""
    command = (["-v", "worker", "--id", name] if mode == "worker"
               else ["serve", "--host", "127.0.0.1", "--port", "0"])
    proc = subprocess.Popen([sys.executable, "-m", "bot", *command], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return Bot(proc)


def base_env(folder: Path, config: Path, **extra: str) -> dict[str, str]:
    """The process environment: its database, its config, the simulator's credentials."""
    env = {k: v for k, v in os.environ.items()
           if not k.upper().startswith(("SLACK_", "DMA_", "HTTP_PROXY", "HTTPS_PROXY"))}
    env.update(DATABASE_URL=f"sqlite:///{folder / 'bot.db'}", UPGRADEBOT_CONFIG=str(config),
               DMA_USERNAME=SIM_USER, DMA_PASSWORD=SIM_PASSWORD, PYTHONUNBUFFERED="1", **extra)
    return env


def config_text(sim: DmaSimulator, lab_url: str, dma_timeout: str = "5s",
                lease: str = "5s") -> str:
    """The e2e config with `lab` behind `lab_url` (dallas and denver answer directly)."""
    text = CONFIG.format(dallas=sim.url_for("dallas"), denver=sim.url_for("denver"), lab=lab_url)
    return text.replace("timeout: 5s", f"timeout: {dma_timeout}").replace(
        "lease: 5s", f"lease: {lease}")


def seed_database(path: Path, sim: DmaSimulator, *, windows: int) -> None:
    """A running run on lab (R1) and `windows` plans on global awaiting approval tomorrow."""
    url = f"sqlite:///{path}"
    upgrade_database(url)
    settings = load_settings_text(config_text(sim, sim.url_for("lab")))
    engine = make_engine(url)
    try:
        services = Services(settings=settings, sessions=make_session_factory(engine),
                            clock=SystemClock(), clients=ClientFactory(
                                settings, username=SIM_USER, password=SIM_PASSWORD))
        lab = services.submit(services.plan("lab", "10.1.0.1"), requester="U0REQUESTER",
                              require_window=False)
        for item in CHECKLIST_ACKS:  # the operator has acknowledged the checklist
            services.acknowledge(lab, item, "U0OPERATOR")
        for user in ("U0APPROVER1", "U0APPROVER2"):
            assert services.approve(lab, user, approvers=APPROVERS).counted
        if windows:
            tomorrow = Window(start=SystemClock().now() + timedelta(days=1),
                              duration=timedelta(hours=8), tz="UTC")
            first = services.submit(services.plan("global", "10.1.0.1"),
                                    requester="U0REQUESTER", window=tomorrow)
            _copy_run(services, first, windows - 1)
    finally:
        engine.dispose()


def _copy_run(services: Services, name: str, copies: int) -> None:
    """Store more plans like `name` directly (the service refuses overlapping plans)."""
    columns = [c.key for c in Run.__table__.columns if c.key not in ("id", "version_id")]
    with unit_of_work(services.sessions) as session:
        run = repo.get_run(session=session, ref=name)
        for _ in range(copies):
            repo.add_run(session=session, **{c: getattr(run, c) for c in columns})


def run_trial(trial: Trial, n: int, folder: Path, sim: DmaSimulator, template: Path,
              extra_env: dict[str, str]) -> Outcome:
    """Start one process, reach the trial's moment, signal it and time its exit."""
    folder.mkdir()
    shutil.copy(template, folder / "bot.db")
    # At the sync and right at start, lab answers at once: only the start-up itself could hold
    # the stop up. Otherwise it accepts connections and never answers in time.
    quick = trial.moment in ("sync", "ready")
    with SlowCluster(sim.base_url if quick else None, lambda *_: not quick) as lab:
        config = folder / "upgradebot.yml"
        config.write_text(config_text(sim, lab.url_for("lab")), encoding="utf-8")
        bot = start(trial.mode, folder, base_env(folder, config, **extra_env), f"w{n}")
        try:
            bot.wait_for(READY, 60)
            if trial.moment == "sync":
                bot.wait_for(SYNC_RUNNING, 10)
            elif trial.moment == "visit":
                assert lab.holding.wait(30), "\n".join(bot.lines[-30:])
            time.sleep(trial.delay_s)
            in_sync = (any(SYNC_RUNNING in line for line in bot.lines)
                       and not any(SYNC_DONE in line for line in bot.lines))
            seconds, status = bot.stop(trial.signum)
        finally:
            bot.close()
    return Outcome(trial, seconds, status, in_sync, bot.lines)


def run_trials(trials: list[Trial], tmp_path: Path, sim: DmaSimulator,
               extra_env: dict[str, str] | None = None) -> list[Outcome]:
    """Run the trials a few at a time on copies of one seeded database."""
    template = tmp_path / "template.db"
    seed_database(template, sim, windows=PLANS_IN_WINDOWS)
    with ThreadPoolExecutor(PARALLEL) as pool:
        futures = [pool.submit(run_trial, t, n, tmp_path / f"t{n}", sim, template,
                               extra_env or {}) for n, t in enumerate(trials)]
        return [f.result() for f in futures]


def draw(rng: random.Random, mode: str, moments: list[str]) -> list[Trial]:
    """Trials at the given moments, SIGTERM and SIGINT in turn, seeded random delays."""
    return [Trial(mode, signal.SIGINT if n % 2 else signal.SIGTERM, moment,
                  rng.uniform(0.0, DELAY_UP_TO_S[moment])) for n, moment in enumerate(moments)]


def check(outcomes: list[Outcome], label: str) -> None:
    """Every process exited in time with status 0; print the stop times."""
    print(f"\n{label}: {sum(o.in_sync for o in outcomes)} stops during the date-job sync")
    for kind, group in (("all", outcomes), ("abandoning work", [o for o in outcomes if o.gave_up]),
                        ("finishing everything", [o for o in outcomes if not o.gave_up])):
        times = [o.seconds for o in group] or [0.0]
        print(f"  {kind}: {len(group)} stops, median {statistics.median(times):.2f} s, "
              f"max {max(times):.2f} s")
    failures = [f"{o.trial}: status {o.status} after {o.seconds:.2f} s\n"
                + "\n".join(o.output[-25:]) for o in outcomes if o.failed()]
    assert not failures, "\n\n".join(failures)


@pytest.fixture
def slack() -> Iterator[SlackDouble]:
    with SlackDouble() as double:
        populate(double)
        yield double


def test_the_worker_stops_in_time_during_the_sync_a_stuck_visit_or_anytime(
        tmp_path: Path) -> None:
    # Two batches of PARALLEL processes: each signal during the sync, one of each after it.
    trials = draw(random.Random(SEED), "worker", ["sync", "sync", "visit", "random"])
    with simulator() as sim:
        outcomes = run_trials(trials, tmp_path, sim)
    check(outcomes, "worker")
    # The sync at start was interrupted at least once (the moment that used to hang the stop).
    assert any(o.in_sync for o in outcomes)


@pytest.mark.parametrize("mode", ["http", "socket"])
def test_serve_stops_in_time_during_a_stuck_visit_or_anytime(
        tmp_path: Path, slack: SlackDouble, mode: str) -> None:
    # Two batches of PARALLEL processes: each signal during a stuck visit, one of each besides.
    trials = draw(random.Random(f"{SEED}-{mode}"), mode, ["ready", "visit", "visit", "random"])
    env = {"SLACK_BOT_TOKEN": "xoxb-e2e", "SLACK_SIGNING_SECRET": SECRET,
           "SLACK_API_URL": slack.base_url}
    with SocketModeDouble() as socket, simulator() as sim:
        if mode == "socket":
            socket.attach(slack)
            env["SLACK_APP_TOKEN"] = "xapp-e2e"
        outcomes = run_trials(trials, tmp_path, sim, env)
    check(outcomes, f"serve ({mode})")


def test_a_visit_abandoned_at_the_stop_is_finished_by_another_worker(tmp_path: Path) -> None:
    # x1500 and a 3 s lease (one worker at a time here): the second worker need not wait long.
    with simulator(speed=1500) as sim, SlowCluster(sim.base_url, lambda method, path: (
            method == "POST" and path.endswith(APPLY))) as lab:
        seed_database(tmp_path / "bot.db", sim, windows=0)
        config = tmp_path / "upgradebot.yml"
        config.write_text(config_text(sim, lab.url_for("lab"), dma_timeout="60s", lease="3s"))
        env = base_env(tmp_path, config)
        # The first worker asks lab to install; lab installs but its answer does not come.
        first = start("worker", tmp_path, env, "first")
        try:
            assert lab.holding.wait(60), "\n".join(first.lines[-30:])
            seconds, status = first.stop(signal.SIGTERM)
        finally:
            first.close()
        print(f"\nworker stopped {seconds:.2f} s after SIGTERM, abandoning the install visit")
        assert status == 0 and seconds < STOP_BUDGET_S, "\n".join(first.lines[-30:])
        assert any("R1 install:lab" in line and "stopped without waiting" in line
                   for line in first.lines), "\n".join(first.lines[-30:])
        # A second worker takes the step over once the lease has expired, reads the cluster
        # and finishes the run without asking for a second install.
        second = start("worker", tmp_path, env, "second")
        try:
            second.wait_for(READY, 60)
            deadline = time.monotonic() + 90
            while status_of(tmp_path) not in ("completed", "failed", "escalated"):
                assert time.monotonic() < deadline, "\n".join(second.lines[-30:])
                time.sleep(0.2)
            assert status_of(tmp_path) == "completed", "\n".join(second.lines[-30:])
            _, status = second.stop(signal.SIGTERM)
            assert status == 0
        finally:
            second.close()
        assert sim.count("POST", APPLY, "lab") == 1
        assert sim.version_of("lab") == "10.1.0.1"
        assert claimers_of(tmp_path, "install:lab") == ["first", "second"]


def status_of(folder: Path) -> str | None:
    """R1's status in the folder's database."""
    engine = make_engine(f"sqlite:///{folder / 'bot.db'}")
    try:
        with unit_of_work(make_session_factory(engine)) as session:
            run = repo.get_run(session=session, ref="R1")
            return run.status if run else None
    finally:
        engine.dispose()


def claimers_of(folder: Path, key: str) -> list[str]:
    """The workers that claimed R1's step `key`, in order, each named once."""
    engine = make_engine(f"sqlite:///{folder / 'bot.db'}")
    try:
        with unit_of_work(make_session_factory(engine)) as session:
            steps = {s.key: s.id for s in repo.steps_of(session=session, run_id=1)}
            claims = session.scalars(select(StepClaim).where(StepClaim.step_id == steps[key])
                                     .order_by(StepClaim.claimed_at)).all()
            return list(dict.fromkeys(c.worker_id for c in claims))
    finally:
        engine.dispose()
