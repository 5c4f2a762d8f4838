"""Set-up shared by bench_scale.py: configurations, databases, runs, and timing the claim."""

from __future__ import annotations

import os
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from bot.config import Settings, load_settings
from bot.config.schema import Settings as SettingsModel
from storage import repo
from storage.db import make_engine, make_session_factory, unit_of_work

SPEED = 300.0  # simulator speed: a 35-minute install takes 7 s
POLL_S = 0.2
APPROVER = "U0APPROVER1"


def _timing(speed: float, installs: int) -> dict[str, Any]:
    """Bot timings in real seconds for a simulator running `speed` times faster than life."""
    return {"poll_interval": POLL_S, "login_grace": 300 / speed, "install_estimate": 2100 / speed,
            "join_estimate": 480 / speed, "leave_estimate": 240 / speed,
            "drain_estimate": 180 / speed, "drain_timeout": "15m", "lease": "1m",
            "max_parallel_installs": installs}


def _base(speed: float, installs: int) -> dict[str, Any]:
    config: dict[str, Any] = {
        "slack": {"approvers": [APPROVER], "operators": ["U0OPERATOR"],
                  "approvals_required": 1},
        "timing": _timing(speed, installs),
        "packages": {"10.1.0.1": {"url": "https://files.example.com/dma/10.1.0.1.bin"}},
    }
    if "worker" in SettingsModel.model_fields:  # worker.concurrency exists after issue 9
        config["worker"] = {"concurrency": int(os.environ.get("BENCH_CONCURRENCY", "16"))}
    return config


def supercluster_settings(tmp: Path, installs_min: list[float], speed: float) -> Settings:
    """A supercluster of two-server clusters c1..cn with the given install minutes."""
    names = [f"c{i + 1}" for i in range(len(installs_min))]
    config = _base(speed, len(names))
    config["superclusters"] = [{"name": "sc", "clusters": [
        {"name": n, "api_url": f"https://{n}.example.com/api/rest", "servers": 2}
        for n in names]}]
    config["simulation"] = {"version": "10.0.0.3", "estimated_install_minutes": 35,
                            "active_calls": 0, "clusters": {
                                n: {"estimated_install_minutes": m}
                                for n, m in zip(names, installs_min, strict=True)}}
    return _write(tmp, config)


def standalone_settings(tmp: Path, count: int, install_min: float, speed: float) -> Settings:
    """`count` stand-alone one-server clusters s1..sN."""
    config = _base(speed, 3)
    config["clusters"] = [{"name": f"s{i + 1}", "api_url": f"https://s{i + 1}.example.com/api",
                           "servers": 1} for i in range(count)]
    config["simulation"] = {"version": "10.0.0.3", "estimated_install_minutes": install_min,
                            "active_calls": 0}
    return _write(tmp, config)


def _write(tmp: Path, config: dict[str, Any]) -> Settings:
    path = tmp / f"bench-{uuid.uuid4().hex[:6]}.yml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return load_settings(path)


def seed_runs(url: str, runs: int, steps: int, *, chained: bool = False) -> None:
    """Running stand-alone runs of `steps` verify steps each (in a chain if `chained`)."""
    now = datetime.now(UTC)
    engine = make_engine(url)
    try:
        with unit_of_work(make_session_factory(engine)) as session:
            for r in range(runs):
                run = repo.add_run(session=session, target=f"t{r}", target_kind="cluster",
                                   to_version="1.0.0", strategy="basic", strategy_reason="",
                                   status="running", requester="bench", plan={},
                                   plan_digest="x", created_at=now, updated_at=now)
                repo.add_steps(session=session, run=run, steps=[
                    {"seq": i, "key": f"s{i}", "kind": "verify", "cluster": None,
                     "deps": [f"s{i - 1}"] if chained and i else [], "params": {},
                     "estimate_s": 1.0, "title": "", "safe_point": False}
                    for i in range(steps)])
    finally:
        engine.dispose()


def pg_base() -> str | None:
    """The PostgreSQL server to create scratch databases on, if any."""
    return os.environ.get("BENCH_DATABASE_URL") or os.environ.get("TEST_DATABASE_URL")


@contextmanager
def database(kind: str) -> Iterator[str]:
    """A fresh, empty database URL of this kind ("sqlite" or "postgresql"), dropped after."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
            yield f"sqlite:///{tmp}/bench.db"
        return
    base = pg_base()
    assert base is not None
    name = f"bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(base).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


class ClaimTimer:
    """Times every call of the repository's claim function while installed."""

    NAMES = ("claim_due_steps", "claim_next_step")

    def __init__(self) -> None:
        self.times: list[float] = []
        self._saved: dict[str, Callable[..., Any]] = {}

    def __enter__(self) -> ClaimTimer:
        for name in self.NAMES:
            original = getattr(repo, name, None)
            if original is None:
                continue
            self._saved[name] = original
            setattr(repo, name, self._wrap(original))
        return self

    def _wrap(self, original: Callable[..., Any]) -> Callable[..., Any]:
        def timed(**kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return original(**kwargs)
            finally:
                self.times.append(time.perf_counter() - t0)
        return timed

    def __exit__(self, *_exc: object) -> None:
        for name, original in self._saved.items():
            setattr(repo, name, original)

    def mean_ms(self) -> float:
        """Mean claim time in milliseconds."""
        return 1000 * sum(self.times) / len(self.times) if self.times else float("nan")
