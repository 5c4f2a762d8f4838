"""`upgradebot audit RUN --format json|csv`: a run's audit trail, read from the database."""

from __future__ import annotations

import csv
import io
import json
import os
from typing import Literal, NoReturn

from sqlalchemy import make_url

from bot.app.core import open_database
from bot.clock import SystemClock
from bot.config import Environment, Settings
from bot.services import ServiceError, Services


def export_audit(env: Environment, run: str, fmt: Literal["json", "csv"] | str) -> str:
    """The run's audit trail as JSON (one document) or CSV (one row per entry)."""
    url = make_url(env.database_url)
    if url.drivername.startswith("sqlite") and url.database not in (None, "", ":memory:") \
            and not os.path.exists(url.database):
        raise ServiceError(f"no database at {url.database} (DATABASE_URL): nothing to export")
    engine, sessions = open_database(env.database_url, migrate=False)
    try:
        # Reading only: no settings, clock or clients are needed beyond the services' shape.
        services = Services(settings=Settings(), sessions=sessions, clock=SystemClock(),
                            clients=_no_clusters)
        summary, lines = services.audit(run)
    finally:
        engine.dispose()
    records = [line.as_record() for line in lines]
    if fmt == "json":
        return json.dumps({"run": summary.name, "target": summary.target,
                           "to_version": summary.to_version, "status": summary.status.value,
                           "entries": records}, indent=2, ensure_ascii=False) + "\n"
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["run", "at", "actor", "action", "step", "detail"])
    for r in records:
        writer.writerow([summary.name, r["at"], r["actor"], r["action"], r["step"] or "",
                         json.dumps(r["detail"], ensure_ascii=False, sort_keys=True)])
    return out.getvalue()


def _no_clusters(name: str) -> NoReturn:
    raise ServiceError("the audit export reads no cluster")
