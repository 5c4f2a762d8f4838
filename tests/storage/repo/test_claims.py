"""Claiming steps under leases: what a worker may take, and when another may take it over."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.orm import Session, sessionmaker

from storage import repo
from storage.db import unit_of_work
from storage.models import Step
from tests.storage.factories import T0, add_chain, make_run, step

LEASE = timedelta(minutes=2)


def claim(session: Session, worker: str = "w1", *, at: timedelta = timedelta(0),
          **kwargs: object) -> Step | None:
    return repo.claim_next_step(session=session, worker_id=worker, now=T0 + at, lease=LEASE,
                                **kwargs)  # type: ignore[arg-type]


def finish(session: Session, found: Step, worker: str = "w1", status: str = "done") -> None:
    found.status = status
    repo.release_step(session=session, step=found, worker_id=worker, now=T0,
                      next_check_at=None)


def test_steps_are_claimed_one_at_a_time_in_dependency_order(
    session_factory: sessionmaker[Session],
) -> None:
    with unit_of_work(session_factory) as session:
        run = make_run(session)
        add_chain(session, run, ["drain:dallas", "install:dallas", "verify:dallas"])

    with unit_of_work(session_factory) as session:
        drain = claim(session)
        assert drain is not None and drain.key == "drain:dallas"
        assert (drain.claimed_by, drain.claimed_until, drain.attempts) == ("w1", T0 + LEASE, 1)
        # drain is held and install waits for it: nothing else to do.
        assert claim(session, "w2") is None
        finish(session, drain)

    with unit_of_work(session_factory) as session:
        install = claim(session, "w2")
        assert install is not None and install.key == "install:dallas"
        finish(session, install, "w2", status="skipped")  # skipped satisfies a dependency too
        verify = claim(session, "w1")
        assert verify is not None and verify.key == "verify:dallas"


def test_only_runs_in_the_given_statuses_are_served_oldest_first(
    session_factory: sessionmaker[Session],
) -> None:
    with unit_of_work(session_factory) as session:
        paused = make_run(session, status="paused")
        add_chain(session, paused, ["install:lab"])
        older = make_run(session)
        add_chain(session, older, ["install:dallas"])
        newer = make_run(session)
        add_chain(session, newer, ["install:denver"])

    with unit_of_work(session_factory) as session:
        keys = [s.key for s in iter(lambda: claim(session), None)]
    assert keys == ["install:dallas", "install:denver"]
    with unit_of_work(session_factory) as session:
        resumed = claim(session, run_statuses=("running", "paused"))
        assert resumed is not None and resumed.key == "install:lab"


def test_a_step_waits_for_its_next_check(session_factory: sessionmaker[Session]) -> None:
    with unit_of_work(session_factory) as session:
        run = make_run(session)
        add_chain(session, run, ["install:dallas"])
    with unit_of_work(session_factory) as session:
        install = claim(session)
        assert install is not None
        install.status = "active"
        repo.release_step(session=session, step=install, worker_id="w1", now=T0,
                          next_check_at=T0 + timedelta(seconds=30))
    with unit_of_work(session_factory) as session:
        assert claim(session, at=timedelta(seconds=29)) is None
        again = claim(session, "w2", at=timedelta(seconds=30))
        assert again is not None and again.key == "install:dallas"
        assert again.attempts == 2 and again.status == "active"


def test_kind_limits_hold_back_pending_steps_but_not_active_ones(
    session_factory: sessionmaker[Session],
) -> None:
    with unit_of_work(session_factory) as session:
        run = make_run(session)
        repo.add_steps(session=session, run=run, steps=[
            step("install:dallas", 1), step("install:denver", 2), step("verify:paris", 3)])
    limits = {"install": 1}
    with unit_of_work(session_factory) as session:
        dallas = claim(session, kind_limits=limits)
        assert dallas is not None and dallas.key == "install:dallas"
        # Claimed but not yet marked active: the slot is already taken.
        other = claim(session, "w2", kind_limits=limits)
        assert other is not None and other.key == "verify:paris"
        dallas.status = "active"
        repo.release_step(session=session, step=dallas, worker_id="w1", now=T0,
                          next_check_at=None)
        # An active install polled again is fine; the pending one still waits.
        polled = claim(session, "w2", kind_limits=limits)
        assert polled is not None and polled.key == "install:dallas"
        assert claim(session, "w3", kind_limits=limits) is None
        finish(session, polled, "w2")
        denver = claim(session, "w3", kind_limits=limits)
        assert denver is not None and denver.key == "install:denver"


def test_an_expired_lease_is_taken_over_and_the_log_says_from_whom(
    session_factory: sessionmaker[Session],
) -> None:
    with unit_of_work(session_factory) as session:
        run = make_run(session)
        add_chain(session, run, ["install:dallas"])
    with unit_of_work(session_factory) as session:
        first = claim(session, "w1")
        assert first is not None
        step_id = first.id
    with unit_of_work(session_factory) as session:  # w1 died; its lease runs out
        assert claim(session, "w2", at=LEASE - timedelta(seconds=1)) is None
        taken = claim(session, "w2", at=LEASE)
        assert taken is not None and taken.id == step_id
        assert (taken.claimed_by, taken.attempts) == ("w2", 2)
    with unit_of_work(session_factory) as session:
        # The old holder has lost it: it can neither renew nor release.
        assert not repo.renew_lease(session=session, step_id=step_id, worker_id="w1",
                                    now=T0 + LEASE, lease=LEASE)
        stale = session.get(Step, step_id)
        assert stale is not None
        with pytest.raises(repo.LeaseLost):
            repo.release_step(session=session, step=stale, worker_id="w1", now=T0,
                              next_check_at=None)
    with session_factory() as session:
        log = [(c.worker_id, c.took_over_from, c.released_at)
               for c in repo.claims_of(session=session, step_id=step_id)]
        assert log == [("w1", None, None), ("w2", "w1", None)]


def test_renewing_keeps_a_step_and_releasing_closes_the_claim(
    session_factory: sessionmaker[Session],
) -> None:
    with unit_of_work(session_factory) as session:
        run = make_run(session)
        add_chain(session, run, ["install:dallas"])
    with unit_of_work(session_factory) as session:
        held = claim(session, "w1")
        assert held is not None
        step_id = held.id
    with unit_of_work(session_factory) as session:
        assert repo.renew_lease(session=session, step_id=step_id, worker_id="w1",
                                now=T0 + timedelta(minutes=1), lease=LEASE)
        # Past the first lease but inside the renewed one: nobody else gets it.
        assert claim(session, "w2", at=LEASE + timedelta(seconds=30)) is None
    with unit_of_work(session_factory) as session:
        held = session.get(Step, step_id)
        assert held is not None
        finish(session, held, "w1")
    with session_factory() as session:
        (only,) = repo.claims_of(session=session, step_id=step_id)
        assert (only.worker_id, only.took_over_from) == ("w1", None)
        assert only.lease_until == T0 + timedelta(minutes=1) + LEASE
        assert only.released_at == T0
        done = session.get(Step, step_id)
        assert done is not None and (done.status, done.claimed_by, done.claimed_until) == (
            "done", None, None)
