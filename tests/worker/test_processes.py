"""Real worker processes: one killed in the middle of an install, two sharing one database."""

from __future__ import annotations

import itertools
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from bot.clients import ClientFactory
from bot.clock import SystemClock
from bot.config import load_settings
from bot.engine.guide import CHECKLIST_ACKS
from bot.sandbox import build_simulator
from bot.services import Services
from bot.simulator import DmaSimulator
from storage import repo
from storage.db import make_engine, make_session_factory, unit_of_work
from storage.models import StepClaim

pytestmark = pytest.mark.slow

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "supercluster.yml"
ROOT = Path(__file__).resolve().parents[2]
USER, PASSWORD = "admin", "process-test-pw"
APPLY = "/installed-software/upgrade-package/apply"
CLUSTERS = ("dallas", "denver", "austin")


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@contextmanager
def setting_up(tmp_path: Path, database_url: str, speed: float = 1200
               ) -> Iterator[tuple[DmaSimulator, Path, Services]]:
    """A fast simulator (x1200: a 35-minute install takes 1.75 s), a config pointing at it with
    short real-time timing, and services."""
    sim = build_simulator(load_settings(FIXTURE), speed=speed, username=USER, password=PASSWORD)
    with sim:
        raw = yaml.safe_load(FIXTURE.read_text())
        for sc in raw["superclusters"]:
            for c in sc["clusters"]:
                c["api_url"] = sim.url_for(c["name"])
        for c in raw["clusters"]:
            c["api_url"] = sim.url_for(c["name"])
        raw["timing"] = {"poll_interval": 0.2, "login_grace": 1, "escalate_after": 20,
                         "drain_timeout": 60, "lease": 3, "tick": 0.1}
        config = tmp_path / "upgradebot.yml"
        config.write_text(yaml.safe_dump(raw))
        settings = load_settings(config)
        engine = make_engine(database_url)
        try:
            services = Services(settings=settings, sessions=make_session_factory(engine),
                                clock=SystemClock(),
                                clients=ClientFactory(settings, username=USER, password=PASSWORD))
            yield sim, config, services
        finally:
            engine.dispose()


def start_worker(worker_id: str, config: Path, database_url: str,
                 *extra: str) -> subprocess.Popen[bytes]:
    """Start `python -m bot worker`; its log goes to a file beside the config."""
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env.update(DATABASE_URL=database_url, UPGRADEBOT_CONFIG=str(config), DMA_USERNAME=USER,
               DMA_PASSWORD=PASSWORD, PYTHONPATH=str(ROOT))
    with open(config.parent / f"{worker_id}.log", "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "bot", "worker", "--id", worker_id,
                                 *extra],
                                env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    proc.log_path = config.parent / f"{worker_id}.log"  # type: ignore[attr-defined]
    return proc


def metrics_of(proc: subprocess.Popen[bytes]) -> dict[str, float]:
    """The worker's own /metrics (it was started with --port 0), summed by metric name."""
    found: list[re.Match[str]] = []

    def listening() -> bool:
        found.extend(re.finditer(
            r"listening on http://127\.0\.0\.1:(\d+) ",
            Path(proc.log_path).read_text(errors="replace")))  # type: ignore[attr-defined]
        return bool(found)

    wait_until(listening, 15, "the worker's metrics port")
    url = f"http://127.0.0.1:{found[0].group(1)}/metrics"
    with urllib.request.urlopen(url, timeout=5) as answer:
        text = answer.read().decode()
    totals: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            totals[sample.name] = totals.get(sample.name, 0.0) + sample.value
    return totals


def status_of(services: Services, name: str) -> str:
    return services.run_status(name)[0]


def stop(proc: subprocess.Popen[bytes]) -> str:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return Path(proc.log_path).read_text(errors="replace")[-2000:]  # type: ignore[attr-defined]


def submit(services: Services) -> str:
    plan = services.plan("global", "10.1.0.1", "full-outage")
    name = services.submit(plan, requester="U0REQUESTER", require_window=False)
    for item in CHECKLIST_ACKS:  # an operator acknowledges the checklist
        services.acknowledge(name, item, "U0OPERATOR")
    for user in ("U0APPROVER1", "U0APPROVER2"):
        services.approve(name, user)
    return name


def test_worker_killed_mid_install_is_taken_over_without_a_second_install(
        tmp_path: Path, database_url: str) -> None:
    # x1000: denver's 30-minute install takes 1.8 s, the margin for the kill to land during it.
    with setting_up(tmp_path, database_url, speed=1000) as (sim, config, services):
        name = submit(services)
        first = start_worker("first", config, database_url)
        try:
            # Kill the worker (SIGKILL: no clean-up) while a cluster is installing.
            wait_until(lambda: sim.count("POST", APPLY) >= 1, 60, "an install to start")
            first.kill()
            first.wait(timeout=10)
            installing = [c for c in CLUSTERS if sim.count("POST", APPLY, c)]
            assert any(sim.version_of(c) == "10.0.0.3" for c in installing)
        finally:
            stop(first)
        # A new worker takes the run over once the dead worker's lease has expired.
        second = start_worker("second", config, database_url)
        try:
            wait_until(lambda: status_of(services, name) in ("completed", "failed", "escalated"),
                       90, f"{name} to finish")
        finally:
            log = stop(second)
        assert status_of(services, name) == "completed", log
        for cluster in CLUSTERS:
            assert sim.version_of(cluster) == "10.1.0.1"
            assert sim.count("POST", APPLY, cluster) == 1, cluster
        assert sorted(sim.members_of("dallas")) == sorted(CLUSTERS)


def test_two_workers_on_postgres_never_run_the_same_step(tmp_path: Path,
                                                         postgres_url: str) -> None:
    with setting_up(tmp_path, postgres_url) as (sim, config, services):
        name = submit(services)
        workers = [start_worker(w, config, postgres_url, "--port", "0")
                   for w in ("alpha", "beta")]
        try:
            wait_until(lambda: status_of(services, name) in ("completed", "failed", "escalated"),
                       90, f"{name} to finish")
            seen = [metrics_of(w) for w in workers]
        finally:
            logs = [stop(w) for w in workers]
        assert status_of(services, name) == "completed", logs
        # Every state change was made exactly once.
        for cluster in CLUSTERS:
            assert sim.count("POST", APPLY, cluster) == 1
        assert sim.count("POST", "/dma-supercluster") == 2
        assert len([r for r in sim.requests if r.method == "DELETE"]) == 2
        # The claim log: both processes worked, and no step was ever held by two at once.
        with unit_of_work(services.sessions) as session:
            claims = session.scalars(select(StepClaim).order_by(StepClaim.claimed_at)).all()
            run = repo.get_run(session=session, ref=name)
            assert run is not None
        assert {c.worker_id for c in claims} == {"alpha", "beta"}
        # Each process exposes its own metrics: together they count every step start once.
        starts = session_count_starts(services, run.id)
        assert all(m["upgradebot_steps_started_total"] > 0 for m in seen)
        assert sum(m["upgradebot_steps_started_total"] for m in seen) == starts
        assert all(m["upgradebot_runs"] >= 1 for m in seen)
        by_step: dict[int, list[StepClaim]] = {}
        for claim in claims:
            by_step.setdefault(claim.step_id, []).append(claim)
        for step_claims in by_step.values():
            for earlier, later in itertools.pairwise(step_claims):
                ended = earlier.released_at or earlier.lease_until
                assert later.claimed_at >= ended, (earlier.worker_id, later.worker_id)


def session_count_starts(services: Services, run_id: int) -> int:
    """How many step starts the audit trail of a run holds."""
    with unit_of_work(services.sessions) as session:
        return sum(1 for e in repo.audit_trail(session=session, run_id=run_id)
                   if e.action == "step.start")


TGKILL = {"x86_64": 234, "aarch64": 131}.get(os.uname().machine)


@pytest.mark.skipif(not sys.platform.startswith("linux") or TGKILL is None,
                    reason="sends a signal to one thread with Linux's tgkill")
def test_a_sigterm_delivered_to_another_thread_than_the_main_one_still_stops_the_worker(
        tmp_path: Path, sqlite_url: str) -> None:
    # The kernel hands a process's signal to any of its threads; Python runs the handler only
    # in the main thread, when it runs Python code. A main thread asleep in one untimed wait
    # never did: the worker went on for good after SIGTERM.
    import ctypes

    with setting_up(tmp_path, sqlite_url) as (_sim, config, services):
        submit(services)
        proc = start_worker("gamma", config, sqlite_url)
        try:
            wait_until(lambda: "running" in stop_log(proc), 30, "the worker to start")
            time.sleep(0.5)  # its visit threads are up
            others = [int(t) for t in os.listdir(f"/proc/{proc.pid}/task") if int(t) != proc.pid]
            assert others, "the worker runs threads besides its main one"
            libc = ctypes.CDLL(None, use_errno=True)
            assert libc.syscall(TGKILL, proc.pid, others[0], int(signal.SIGTERM)) == 0
            proc.wait(timeout=10)
        finally:
            log = stop(proc)
        assert proc.returncode == 0, log


def stop_log(proc: subprocess.Popen[bytes]) -> str:
    """What the process logged so far."""
    return Path(proc.log_path).read_text(errors="replace")  # type: ignore[attr-defined]
