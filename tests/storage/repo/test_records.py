"""What runs leave behind: territory snapshots, step durations, escalations."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.orm import Session, sessionmaker

from bot.dma.errors import DmaError
from bot.dma.models import Territory
from storage import repo
from storage.db import unit_of_work
from tests.storage.factories import T0, add_chain, make_run


def territory(territory_id: str, primary: str) -> dict[str, object]:
    return Territory(territory_id=territory_id, name=territory_id, primary=primary,
                     backup="denver").to_json()


def test_a_territory_snapshot_keeps_the_first_record(
    session_factory: sessionmaker[Session],
) -> None:
    before = [territory("t1", "dallas"), territory("t2", "paris")]
    with unit_of_work(session_factory) as session:
        run_id = make_run(session).id
        repo.save_territory_snapshot(session=session, run_id=run_id, supercluster="global",
                                     territories=before, at=T0)
    with unit_of_work(session_factory) as session:
        # Saved again mid-run, after t1 moved to its backup: the original assignment stays.
        moved = [territory("t1", "denver"), territory("t3", "paris")]
        repo.save_territory_snapshot(session=session, run_id=run_id, supercluster="global",
                                     territories=moved, at=T0 + timedelta(minutes=5))
    with session_factory() as session:
        saved = repo.territory_snapshot(session=session, run_id=run_id)
        assert saved == [*before, territory("t3", "paris")]
        assert Territory.from_json(saved[0]).primary == "dallas"
    with pytest.raises(DmaError), unit_of_work(session_factory) as session:
        repo.save_territory_snapshot(session=session, run_id=run_id, supercluster="global",
                                     territories=[{"name": "no id"}], at=T0)


def test_duration_history_is_per_kind_and_cluster_newest_first(
    session_factory: sessionmaker[Session],
) -> None:
    with unit_of_work(session_factory) as session:
        run_id = make_run(session).id
        for minutes, cluster, seconds in [(0, "dallas", 100.0), (1, "dallas", 200.0),
                                          (2, "denver", 300.0), (3, "dallas", 400.0),
                                          (4, None, 500.0)]:
            repo.record_step_duration(session=session, run_id=run_id, kind="install",
                                      cluster=cluster, seconds=seconds, estimate_s=150.0,
                                      at=T0 + timedelta(minutes=minutes))
    with session_factory() as session:
        def history(cluster: str | None, limit: int = 5) -> list[float]:
            return repo.duration_history(session=session, kind="install", cluster=cluster,
                                         limit=limit)

        assert history("dallas") == [400.0, 200.0, 100.0]
        assert history("dallas", limit=2) == [400.0, 200.0]
        assert history(None) == [500.0]
        assert repo.duration_history(session=session, kind="drain", cluster="dallas") == []


def test_escalations_stay_open_until_resolved(session_factory: sessionmaker[Session]) -> None:
    with unit_of_work(session_factory) as session:
        run = make_run(session)
        (install,) = add_chain(session, run, ["install:dallas"])
        repo.add_escalation(session=session, run_id=run.id, step_id=install.id,
                            cluster="dallas", condition="install_too_long",
                            details={"waited_s": 5400}, at=T0)
    with unit_of_work(session_factory) as session:
        (open_one,) = repo.open_escalations(session=session, run_id=run.id)
        assert (open_one.cluster, open_one.details) == ("dallas", {"waited_s": 5400})
        assert repo.resolve_escalations(session=session, run_id=run.id,
                                        at=T0 + timedelta(hours=1), by="U1") == 1
        assert repo.resolve_escalations(session=session, run_id=run.id, at=T0, by="U1") == 0
    with session_factory() as session:
        assert repo.open_escalations(session=session, run_id=run.id) == []
