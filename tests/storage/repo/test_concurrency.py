"""Several workers sharing one database never run a step twice (SKIP LOCKED on PostgreSQL)."""

from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, sessionmaker

from storage import repo
from storage.db import make_engine, make_session_factory, unit_of_work
from storage.models import Step, StepClaim
from tests.storage.factories import T0, make_run, step

LEASE = timedelta(hours=1)
DEADLINE_S = 30.0


def add_runs(factory: sessionmaker[Session], runs: int, steps: int, kind: str = "check") -> int:
    with unit_of_work(factory) as session:
        for r in range(runs):
            run = make_run(session, target=f"sc{r}")
            repo.add_steps(session=session, run=run,
                           steps=[step(f"{kind}:c{i}", i) for i in range(steps)])
    return runs * steps


def test_concurrent_workers_claim_every_step_exactly_once(
    session_factory: sessionmaker[Session],
) -> None:
    total = add_runs(session_factory, runs=4, steps=30)
    claimed: list[int] = []
    lock = threading.Lock()
    start = threading.Barrier(4)

    def work(worker: str) -> None:
        start.wait()
        deadline = time.monotonic() + DEADLINE_S
        while time.monotonic() < deadline:
            with unit_of_work(session_factory) as session:
                found = repo.claim_next_step(session=session, worker_id=worker, now=T0,
                                             lease=LEASE)
                step_id = None if found is None else found.id
            with lock:
                if step_id is not None:
                    claimed.append(step_id)
                elif len(claimed) >= total:
                    return
        raise AssertionError(f"{worker}: not every step was claimed in {DEADLINE_S}s")

    with ThreadPoolExecutor(max_workers=4) as pool:
        for future in [pool.submit(work, f"w{i}") for i in range(4)]:
            future.result()

    assert len(claimed) == total and len(set(claimed)) == total
    with session_factory() as session:
        per_step = Counter(session.scalars(select(StepClaim.step_id)))
        assert len(per_step) == total and set(per_step.values()) == {1}
        assert set(session.scalars(select(Step.attempts))) == {1}


def test_a_kind_limit_holds_when_workers_race(session_factory: sessionmaker[Session]) -> None:
    add_runs(session_factory, runs=1, steps=6, kind="install")
    start = threading.Barrier(4)

    def claim_once(worker: str) -> int | None:
        start.wait()
        with unit_of_work(session_factory) as session:
            found = repo.claim_next_step(session=session, worker_id=worker, now=T0, lease=LEASE,
                                         kind_limits={"install": 1})
            return None if found is None else found.id

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = [f.result() for f in [pool.submit(claim_once, f"w{i}") for i in range(4)]]
    assert len([r for r in results if r is not None]) == 1
    with session_factory() as session:
        assert session.scalar(select(func.count()).select_from(StepClaim)) == 1


def test_a_claimed_step_is_skipped_rather_than_waited_for(postgres_url: str) -> None:
    engine = make_engine(postgres_url)
    factory = make_session_factory(engine)
    try:
        add_runs(factory, runs=2, steps=3)
        with factory() as first, factory() as second:
            held = repo.claim_next_step(session=first, worker_id="w1", now=T0, lease=LEASE)
            assert held is not None and held.key == "check:c0"
            # w1 has not committed, so it still locks the step it took. w2 must not wait on it
            # (a wait would hit this timeout and fail) and takes another step.
            second.execute(text("SET LOCAL lock_timeout = '2s'"))
            other = repo.claim_next_step(session=second, worker_id="w2", now=T0, lease=LEASE)
            assert other is not None and other.id != held.id
            first.commit()
            second.commit()
        with factory() as third:
            after = repo.claim_next_step(session=third, worker_id="w3", now=T0, lease=LEASE)
            assert after is not None and after.id not in (held.id, other.id)
    finally:
        engine.dispose()
