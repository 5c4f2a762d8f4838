"""The serving worker in real time: it wakes when a step is due, and a slow cluster holds only
its own visit (a bounded pool of visits per process)."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from requests import PreparedRequest
from requests.adapters import BaseAdapter

from bot.clients import ClientFactory
from bot.clock import SystemClock
from bot.config import Settings, load_settings
from bot.config.problems import ConfigError
from bot.engine.guide import CHECKLIST_ACKS
from bot.sandbox import build_simulator
from bot.services import Services
from bot.simulator import DmaSimulator
from bot.simulator.core import IN_PROCESS_URL
from bot.worker.runner import Worker
from bot.worker.scheduler import Deadline, start_worker, stop_worker
from storage import repo
from storage.db import make_engine, make_session_factory, unit_of_work

pytestmark = pytest.mark.slow
SPEED = 600.0  # a 10-minute install takes 1 s
APPROVERS = ["U0APPROVER1"]


def settings_for(tmp_path: Path, clusters: list[str], *, poll_s: float, tick_s: float,
                 concurrency: int) -> Settings:
    """Stand-alone one-server clusters with short installs, timings in real seconds."""
    config: dict[str, Any] = {
        "slack": {"approvers": APPROVERS, "operators": ["U0OPERATOR"],
                  "approvals_required": 1},
        "timing": {"poll_interval": poll_s, "tick": tick_s, "lease": 60,
                   "login_grace": 300 / SPEED, "install_estimate": 600 / SPEED},
        "worker": {"concurrency": concurrency},
        "packages": {"10.1.0.1": {"url": "https://files.example.com/dma/10.1.0.1.bin"}},
        "clusters": [{"name": c, "api_url": f"https://{c}.example.com/api", "servers": 1}
                     for c in clusters],
        "simulation": {"version": "10.0.0.3", "estimated_install_minutes": 10,
                       "active_calls": 0},
    }
    path = tmp_path / "bot.yml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return load_settings(path)


class SlowLink(BaseAdapter):
    """A cluster behind a slow link: every request takes `delay_s` longer (a fake, not a mock)."""

    def __init__(self, inner: BaseAdapter, delay_s: float) -> None:
        super().__init__()
        self.inner, self.delay_s = inner, delay_s  # a test may mend the link by zeroing it

    def send(self, request: PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        """Wait, then deliver."""
        time.sleep(self.delay_s)
        return self.inner.send(request, *args, **kwargs)

    def close(self) -> None:
        """Close the real adapter."""
        self.inner.close()


@contextmanager
def served(settings: Settings, url: str, slow: dict[str, float] | None = None
           ) -> Iterator[tuple[Services, Worker, DmaSimulator, dict[str, SlowLink]]]:
    """A simulator in real time (x600), services, a started worker and the slow links (by
    cluster); stopped after."""
    clock = SystemClock()
    sim = build_simulator(settings, clock=clock, speed=SPEED, username="u", password="p")
    engine = make_engine(url)
    sessions = make_session_factory(engine)

    def session_for() -> requests.Session:
        return sim.session()

    clients = ClientFactory(settings, username="u", password="p", retries=0,
                            urls={c.name: sim.url_for(c.name) for c in settings.all_clusters()},
                            session_factory=session_for)
    links: dict[str, SlowLink] = {}
    for name, delay in (slow or {}).items():
        session = clients(name)._session  # the test puts the slow link in place
        prefix = f"{IN_PROCESS_URL}/"
        links[name] = SlowLink(session.adapters[prefix], delay)
        session.mount(prefix, links[name])
    services = Services(settings=settings, sessions=sessions, clock=clock, clients=clients)
    worker = Worker(session_factory=sessions, settings=settings, clock=clock, clients=clients,
                    worker_id="loop-test")
    scheduler, _ = start_worker(worker)
    try:
        yield services, worker, sim, links
    finally:
        stop_worker(scheduler, worker, Deadline.after(5))
        engine.dispose()


def start_run(services: Services, cluster: str) -> str:
    """Plan, submit and approve a basic upgrade of one stand-alone cluster."""
    plan = services.plan(cluster, "10.1.0.1")
    name = services.submit(plan, requester="U0REQ", channel="C0UP", require_window=False)
    for item in CHECKLIST_ACKS:  # an operator acknowledges the manual checklist, as the buttons do
        services.acknowledge(name, item, "U0OPERATOR")
    services.approve(name, APPROVERS[0], source="cli", approvers=APPROVERS)
    return name


def wait_for(services: Services, names: list[str], status: str, within_s: float) -> None:
    """Wait (bounded) until every run has the status."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if all(services.run_status(n)[0] == status for n in names):
            return
        time.sleep(0.05)
    raise AssertionError(f"{[services.run_status(n)[0] for n in names]} after {within_s} s")


def test_a_step_due_in_a_fraction_of_a_second_is_visited_then_not_at_the_next_tick(
    tmp_path: Path, sqlite_url: str,
) -> None:
    # The tick is 20 s: a worker that only woke on its tick would take minutes.
    settings = settings_for(tmp_path, ["lab"], poll_s=0.3, tick_s=20, concurrency=4)
    with served(settings, sqlite_url) as (services, _worker, _sim, _links):
        began = time.monotonic()
        name = start_run(services, "lab")
        wait_for(services, [name], "completed", within_s=15)
        took = time.monotonic() - began
    engine = make_engine(sqlite_url)
    with unit_of_work(make_session_factory(engine)) as session:
        run = repo.get_run(session=session, ref=name)
        assert run is not None
        step = next(s for s in repo.steps_of(session=session, run_id=run.id)
                    if s.key == "wait_login:lab")
        claimed = [c.claimed_at for c in repo.claims_of(session=session, step_id=step.id)]
    engine.dispose()
    assert took < 10, f"the upgrade took {took:.1f} s"
    # The restart is polled every 0.3 s: looks follow each other at the poll interval.
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(claimed)]
    assert len(claimed) >= 3 and max(gaps) < 1.5, gaps


def test_a_slow_cluster_never_delays_another_run(tmp_path: Path, sqlite_url: str) -> None:
    settings = settings_for(tmp_path, ["slow", "fast"], poll_s=0.2, tick_s=20, concurrency=4)
    # Once its run is under way, every request to `slow` takes 0.8 s: with one visit at a time,
    # `fast` would wait behind each of them (a dozen visits of one to three requests). (Its
    # plan, read before, need not be slow too: that would only delay the test.)
    with served(settings, sqlite_url, slow={"slow": 0.0}) as (services, _worker, _sim, links):
        slow = start_run(services, "slow")
        links["slow"].delay_s = 0.8
        fast = start_run(services, "fast")
        began = time.monotonic()
        wait_for(services, [fast], "completed", within_s=20)
        fast_s = time.monotonic() - began
        assert services.run_status(slow)[0] == "running"  # still busy with its slow link
        # The link is mended (the slow run has made its point): its run still completes.
        links["slow"].delay_s = 0.0
        wait_for(services, [slow], "completed", within_s=60)
    assert fast_s < 6, f"the fast cluster's upgrade took {fast_s:.1f} s"


def test_the_worker_visits_at_most_its_concurrency_at_once(
    tmp_path: Path, sqlite_url: str,
) -> None:
    # Three runs for two visits at once: a third visit is due often enough to show a broken bound.
    names = [f"c{i}" for i in range(3)]
    settings = settings_for(tmp_path, names, poll_s=0.2, tick_s=20, concurrency=2)
    most = 0
    # Every request takes 0.1 s once the runs are under way (their plans are read at once).
    with served(settings, sqlite_url, slow=dict.fromkeys(names, 0.0)) as (services, worker,
                                                                          _sim, links):
        runs = [start_run(services, c) for c in names]
        for link in links.values():
            link.delay_s = 0.1
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            busy = worker.visiting
            most = max(most, len(busy.split(", ")) if busy else 0)
            if all(services.run_status(n)[0] == "completed" for n in runs):
                break
            time.sleep(0.02)
        wait_for(services, runs, "completed", within_s=1)
    assert most == 2


def test_the_concurrency_is_a_configuration_key_with_bounds(tmp_path: Path) -> None:
    assert settings_for(tmp_path, ["a"], poll_s=1, tick_s=2, concurrency=8).worker.concurrency \
        == 8
    with pytest.raises(ConfigError, match=r"worker\.concurrency"):
        settings_for(tmp_path, ["a"], poll_s=1, tick_s=2, concurrency=0)
