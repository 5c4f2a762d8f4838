"""Claims across all runs: due-time order, batches, constant cost, exact slots under races."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

from sqlalchemy import event, select
from sqlalchemy.orm import Session, sessionmaker

from storage import repo
from storage.db import make_engine, make_session_factory, unit_of_work
from storage.models import Step
from tests.storage.factories import T0, add_chain, make_run, step

LEASE = timedelta(hours=1)
ROOT = Path(__file__).resolve().parents[3]


def due(session: Session, worker: str = "w1", limit: int = 10, **kwargs: object) -> list[Step]:
    return repo.claim_due_steps(session=session, worker_id=worker, now=T0, lease=LEASE,
                                limit=limit, **kwargs)  # type: ignore[arg-type]


def test_the_earliest_due_step_of_any_run_comes_first(
    session_factory: sessionmaker[Session],
) -> None:
    with unit_of_work(session_factory) as session:
        late, early = make_run(session), make_run(session)
        (a,) = add_chain(session, late, ["wait_login:dallas"])
        (b,) = add_chain(session, early, ["wait_login:denver"])
        a.status = b.status = "active"
        a.next_check_at, b.next_check_at = T0 - timedelta(seconds=5), T0 - timedelta(seconds=20)
        c = repo.add_steps(session=session, run=make_run(session),
                           steps=[step("verify:austin", 0)])[0]
        c.next_check_at = T0 + timedelta(seconds=1)  # not due yet
    with unit_of_work(session_factory) as session:
        assert [s.key for s in due(session)] == ["wait_login:denver", "wait_login:dallas"]


def test_waiting_dependents_are_parked_and_come_back_when_their_dependency_finishes(
    session_factory: sessionmaker[Session],
) -> None:
    with unit_of_work(session_factory) as session:
        add_chain(session, make_run(session), ["install:dallas", "wait_login:dallas"])
    with unit_of_work(session_factory) as session:
        (install,) = due(session)
    with session_factory() as session:
        parked = session.scalar(select(Step).where(Step.key == "wait_login:dallas"))
        assert parked is not None and parked.next_check_at == repo.PARKED
        # A parked step is no moment to wake for: nothing is due on its own.
        assert repo.next_step_moment(session=session, now=T0) == T0 + LEASE  # install's lease
    with unit_of_work(session_factory) as session:
        held = session.get(Step, install.id)
        assert held is not None
        held.status = "done"
        repo.release_step(session=session, step=held, worker_id="w1", now=T0, next_check_at=None)
    with unit_of_work(session_factory) as session:
        assert [s.key for s in due(session)] == ["wait_login:dallas"]


def test_a_claim_costs_the_same_number_of_queries_for_5_and_100_runs(
    session_factory: sessionmaker[Session],
) -> None:
    def statements_of_one_claim(runs: int) -> int:
        with unit_of_work(session_factory) as session:
            for _ in range(runs):
                run = make_run(session)
                waiting, *_ = add_chain(session, run, ["wait_login:a", "verify:a", "join:a"])
                waiting.status, waiting.next_check_at = "active", T0 + timedelta(minutes=5)
            # Runs waiting for approval and finished runs cost nothing either.
            add_chain(session, make_run(session, status="awaiting_approval"), ["preflight"])
            done = add_chain(session, make_run(session, status="completed"), ["preflight"])
            done[0].status = "done"
        probe = None
        with unit_of_work(session_factory) as session:
            probe = add_chain(session, make_run(session), ["preflight"])[0].id
        seen: list[str] = []
        engine = session_factory.kw["bind"]

        def count(*args: object) -> None:
            seen.append(str(args[2]))

        event.listen(engine, "before_cursor_execute", count)
        try:
            with unit_of_work(session_factory) as session:
                (got,) = due(session)
                assert got.id == probe
        finally:
            event.remove(engine, "before_cursor_execute", count)
        with unit_of_work(session_factory) as session:  # clean slate for the next size
            for s in session.scalars(select(Step)):
                s.status, s.claimed_by, s.claimed_until = "done", None, None
        return len(seen)

    assert statements_of_one_claim(5) == statements_of_one_claim(100)


def test_install_slots_hold_exactly_when_threads_claim_batches_at_once(
    session_factory: sessionmaker[Session],
) -> None:
    with unit_of_work(session_factory) as session:
        repo.add_steps(session=session, run=make_run(session),
                       steps=[step(f"install:c{i}", i) for i in range(6)])
    start = threading.Barrier(4)

    def claim_batch(worker: str) -> list[int]:
        start.wait()
        with unit_of_work(session_factory) as session:
            return [s.id for s in due(session, worker, limit=3, kind_limits={"install": 2})]

    with ThreadPoolExecutor(max_workers=4) as pool:
        got = [i for f in [pool.submit(claim_batch, f"w{i}") for i in range(4)]
               for i in f.result()]
    assert len(got) == 2 and len(set(got)) == 2


_CHILD = """
import json, sys, time
from datetime import datetime, timedelta, timezone
from storage import repo
from storage.db import make_engine, make_session_factory, unit_of_work
url, worker, start = sys.argv[1], sys.argv[2], float(sys.argv[3])
sessions = make_session_factory(make_engine(url))
now = datetime(2026, 11, 25, 22, 0, tzinfo=timezone.utc)
time.sleep(max(0.0, start - time.time()))
with unit_of_work(sessions) as session:  # both processes race for the install slots
    slots = [s.id for s in repo.claim_due_steps(session=session, worker_id=worker, now=now,
             lease=timedelta(hours=1), limit=5, kind_limits={"install": 2})]
checks = []
while True:  # then share the checks until none is left, each claimed once
    with unit_of_work(sessions) as session:
        got = repo.claim_due_steps(session=session, worker_id=worker, now=now,
                                   lease=timedelta(hours=1), limit=3)
        for s in got:
            s.status = "done"
            repo.release_step(session=session, step=s, worker_id=worker, now=now,
                              next_check_at=None)
    if not got:
        break
    checks += [s.id for s in got]
print(json.dumps({"slots": slots, "checks": checks}))
"""


def test_two_processes_on_postgresql_keep_the_slots_exact_and_claim_each_step_once(
    postgres_url: str,
) -> None:
    engine = make_engine(postgres_url)
    factory = make_session_factory(engine)
    with unit_of_work(factory) as session:
        repo.add_steps(session=session, run=make_run(session),
                       steps=[step(f"install:c{i}", i) for i in range(6)])
        checks = [s.id for r in range(8) for s in repo.add_steps(
            session=session, run=make_run(session),
            steps=[step(f"check:c{i}", i) for i in range(10)])]
    engine.dispose()
    start = time.time() + 2.0
    children = [subprocess.Popen([sys.executable, "-c", _CHILD, postgres_url, f"p{i}",
                                  str(start)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
                for i in range(2)]
    outs = [json.loads(c.communicate(timeout=60)[0]) for c in children]
    assert all(c.returncode == 0 for c in children)
    slots = [i for o in outs for i in o["slots"] if i not in checks]
    assert len(slots) == 2
    claimed = Counter(i for o in outs for i in o["checks"] + o["slots"] if i in checks)
    assert set(claimed) == set(checks) and set(claimed.values()) == {1}


def test_a_step_whose_dependencies_finish_in_concurrent_transactions_is_not_left_parked(
    postgres_url: str,
) -> None:
    # Two uploads finish at once in two workers; each transaction sees the other upload still
    # unfinished. The step after both must still be claimable at once, not at the next
    # housekeeping pass half a minute later.
    engine = make_engine(postgres_url)
    factory = make_session_factory(engine)
    try:
        with unit_of_work(factory) as session:
            repo.add_steps(session=session, run=make_run(session), steps=[
                step("upload:dallas", 0), step("upload:denver", 1),
                step("record_territories", 2, deps=["upload:dallas", "upload:denver"])])
        with unit_of_work(factory) as session:
            assert sorted(s.key for s in due(session)) == ["upload:dallas", "upload:denver"]

        def finish(key: str, session: Session) -> None:
            held = session.scalar(select(Step).where(Step.key == key))
            assert held is not None
            held.status = "done"
            repo.release_step(session=session, step=held, worker_id="w1", now=T0,
                              next_check_at=None)

        with factory() as first, factory() as second:
            finish("upload:dallas", first)
            with ThreadPoolExecutor(1) as pool:
                # The second waits for the first's row lock on the dependant, if it takes one.
                later = pool.submit(finish, "upload:denver", second)
                time.sleep(0.2)
                first.commit()
                later.result(timeout=30)
            second.commit()
        with unit_of_work(factory) as session:
            assert [s.key for s in due(session)] == ["record_territories"]
    finally:
        engine.dispose()
