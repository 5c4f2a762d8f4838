"""Claim throughput of worker processes sharing PostgreSQL (used by bench_scale.py)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from scale_setup import database, seed_runs

from storage.db import upgrade_database

ROOT = Path(__file__).resolve().parents[1]

_CLAIMER = """
import sys, time
from datetime import UTC, datetime, timedelta
from storage import repo
from storage.db import make_engine, make_session_factory, unit_of_work
url, worker, start = sys.argv[1], sys.argv[2], float(sys.argv[3])
sessions = make_session_factory(make_engine(url))
time.sleep(max(0.0, start - time.time()))
done = 0
while True:
    now = datetime.now(UTC)
    with unit_of_work(sessions) as session:
        got = repo.claim_due_steps(session=session, worker_id=worker, now=now,
                                   lease=timedelta(minutes=5), limit=4)
        for s in got:
            s.status = "done"
            repo.release_step(session=session, step=s, worker_id=worker, now=now,
                              next_check_at=None)
    if not got:
        break
    done += len(got)
print(done)
"""


def claim_throughput(procs: int, runs: int = 40, steps: int = 20) -> float:
    """Steps per second claimed, finished and released by `procs` processes on PostgreSQL."""
    with database("postgresql") as url:
        upgrade_database(url)
        seed_runs(url, runs, steps)
        start = time.time() + 1.5
        children = [subprocess.Popen([sys.executable, "-c", _CLAIMER, url, f"p{i}", str(start)],
                                     cwd=ROOT, stdout=subprocess.PIPE, text=True)
                    for i in range(procs)]
        total = sum(int(c.communicate(timeout=600)[0]) for c in children)
        took = time.time() - start
    if total != runs * steps:
        raise RuntimeError(f"{total} steps claimed for {runs * steps}")
    return total / took
