"""Engine figures: plan estimates, whole rehearsals against the simulator, step-claim throughput.

Run: .venv/bin/python bench/bench_engine.py [--quick]
PostgreSQL figures are added when BENCH_DATABASE_URL (or TEST_DATABASE_URL) points at a server
on which the script may create and drop a scratch database.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from scale_setup import seed_runs  # noqa: E402

from bot.engine.durations import say_duration  # noqa: E402
from bot.engine.planner import ClusterFacts, PlanRequest, Strategy, TerritoryFacts, make_plan  # noqa: E402
from bot.rehearsal import run_rehearsal  # noqa: E402
from storage import repo  # noqa: E402
from storage.db import make_engine, make_session_factory, unit_of_work, upgrade_database  # noqa: E402

FIXTURE = str(ROOT / "tests" / "fixtures" / "supercluster.yml")


def plans() -> None:
    """Estimates of the vendor's two incompatible procedures for three clusters."""
    clusters = tuple(ClusterFacts(n, 2, "10.0.0.3", m) for n, m in
                     (("dallas", 35), ("denver", 30), ("austin", 40)))
    territories = (TerritoryFacts("t1", "A", "dallas", "denver"),
                   TerritoryFacts("t2", "B", "denver", "austin"))
    made = {s: make_plan(PlanRequest("global", "supercluster", clusters, territories, "10.1.0.1",
                                     s)) for s in (Strategy.FULL_OUTAGE, Strategy.INCREMENTAL)}
    full, inc = made[Strategy.FULL_OUTAGE], made[Strategy.INCREMENTAL]
    installs = sum(s.estimate_s for s in full.steps if s.kind.value == "install")
    print("## Plan estimates (3 two-server clusters, installs 35/30/40 min)")
    print(f"full-outage total {say_duration(full.total_estimate_s)}, outage "
          f"{say_duration(full.outage_estimate_s or 0)}; sum of installs "
          f"{say_duration(installs)}")
    print(f"incremental total {say_duration(inc.total_estimate_s)}; ratio incremental/full = "
          f"{inc.total_estimate_s / full.total_estimate_s:.2f}")
    t0 = time.perf_counter()
    for _ in range(200):
        make_plan(PlanRequest("global", "supercluster", clusters, territories, "10.1.0.1",
                              Strategy.INCREMENTAL))
    print(f"planner: {(time.perf_counter() - t0) / 200 * 1000:.2f} ms per incremental plan\n")


def rehearsals(speed: float) -> None:
    """Whole upgrades against the simulator in virtual time."""
    print(f"## Rehearsals (simulator and worker at x{speed:g}, SQLite)")
    print("| case | result | virtual duration | estimate | outage | real s | requests |"
          " installs |")
    print("|---|---|---|---|---|---|---|---|")
    cases = [("full-outage (bundled)", {}),
             ("incremental (bundled)", {"strategy": "incremental"}),
             ("basic patch 10.0.0.4", {"config": FIXTURE, "version": "10.0.0.4"}),
             ("full-outage, denver never returns", {"faults": ["denver=never-returns"]})]
    for label, kwargs in cases:
        r = run_rehearsal(speed=speed, out=lambda _line: None, timeout_s=300,
                          **kwargs)  # type: ignore[arg-type]
        installs = "/".join(str(v[3]) for v in r.clusters.values())
        outage = say_duration(r.outage_s) if r.outage_s is not None else "-"
        print(f"| {label} | {r.status} | {say_duration(r.virtual_s)} | "
              f"{say_duration(r.estimate_s)} | {outage} | {r.real_s:.1f} | {r.requests} | "
              f"{installs} |")
    print()


def claims(url: str, label: str, workers: int, runs: int = 20, steps: int = 20) -> None:
    """Claim, mark done and release every step; report claims per second."""
    upgrade_database(url)
    seed_runs(url, runs, steps)
    engine = make_engine(url)
    sessions = make_session_factory(engine)
    done = [0] * workers

    def work(i: int) -> None:
        while True:
            now = datetime.now(UTC)
            with unit_of_work(sessions) as session:
                step = repo.claim_next_step(session=session, worker_id=f"w{i}", now=now,
                                            lease=timedelta(minutes=1))
                if step is None:
                    return
                step.status = "done"
                repo.release_step(session=session, step=step, worker_id=f"w{i}", now=now,
                                  next_check_at=None)
            done[i] += 1

    t0 = time.perf_counter()
    threads = [threading.Thread(target=work, args=(i,)) for i in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    took = time.perf_counter() - t0
    total = sum(done)
    print(f"| {label} | {workers} | {total} | {took:.2f} | {total / took:.0f} |")
    engine.dispose()
    assert total == runs * steps, f"{total} claims for {runs * steps} steps"


def claim_figures() -> None:
    """Claim throughput on SQLite, and on PostgreSQL when a server is given."""
    print("## Step claims (20 runs x 20 steps; claim + finish + release per step)")
    print("| database | workers | steps | seconds | claims/s |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        claims(f"sqlite:///{tmp}/bench.db", "SQLite", 1)
    base = os.environ.get("BENCH_DATABASE_URL") or os.environ.get("TEST_DATABASE_URL")
    if not base:
        print("(PostgreSQL skipped: set BENCH_DATABASE_URL)")
        return
    for workers in (1, 2, 4):
        name = f"bench_{uuid.uuid4().hex[:8]}"
        admin = create_engine(base, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            url = make_url(base).set(database=name).render_as_string(hide_password=False)
            claims(url, "PostgreSQL", workers)
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
            admin.dispose()


def main() -> None:
    """Print every figure."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--speed", type=float, default=600.0)
    parser.add_argument("--quick", action="store_true", help="skip the rehearsals")
    args = parser.parse_args()
    plans()
    if not args.quick:
        rehearsals(args.speed)
    claim_figures()


if __name__ == "__main__":
    main()
