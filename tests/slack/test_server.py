"""HTTP mode's WSGI app: /healthz reports the database, the worker and the outbox; 503 when the
database is down or the worker stalled; Slack's requests go to bolt at /slack/events."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from datetime import timedelta
from pathlib import Path
from typing import Any
from wsgiref.util import setup_testing_defaults

from slack_bolt import App
from slack_sdk import WebClient

from bot.clock import FakeClock
from bot.flows.health import Health
from bot.slack.server import HttpServer, wsgi_app
from storage import repo
from storage.db import make_engine, make_session_factory, unit_of_work, upgrade_database
from tests.support.slack_double import SlackDouble


def call(application: Any, method: str, path: str) -> tuple[str, dict[str, Any] | str]:
    environ: dict[str, Any] = {"REQUEST_METHOD": method, "PATH_INFO": path}
    setup_testing_defaults(environ)
    seen: list[str] = []
    body = b"".join(application(environ, lambda status, headers: seen.append(status)))
    try:
        return seen[0], json.loads(body)
    except ValueError:
        return seen[0], body.decode()


def bolt_app(slack: SlackDouble) -> App:
    return App(client=WebClient(token="xoxb-test", base_url=slack.base_url),
               signing_secret="secret")


def test_healthz_reports_database_worker_and_outbox(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'bot.db'}"
    upgrade_database(url)
    engine = make_engine(url)
    sessions = make_session_factory(engine)
    clock = FakeClock()
    with unit_of_work(sessions) as session:
        repo.enqueue_message(session=session, at=clock.now() - timedelta(seconds=90),
                             payload={"text": "waiting for Slack"}, channel="C1")
    health = Health(sessions, clock, "http", worker_id="w1", started_at=clock.now(),
                    stalled_after_s=60)
    with SlackDouble() as slack:
        application = wsgi_app(bolt_app(slack), health, signing_secret="secret")
        health.ticked()
        status, body = call(application, "GET", "/healthz")
        assert status == "200 OK"
        assert body == {"mode": "http", "database": {"ok": True},
                        "outbox": {"backlog": 1, "oldest_s": 90.0, "ok": True}, "status": "ok",
                        "worker": {"id": "w1", "last_tick": clock.now().isoformat(),
                                   "seconds_since_tick": 0.0, "stalled": False}}

        # A worker that stopped ticking makes the check fail.
        clock.advance(61)
        status, body = call(application, "GET", "/healthz")
        assert status.startswith("503") and body["worker"]["stalled"] is True  # type: ignore[index]

        # Other paths are not found; Slack's path belongs to bolt (unsigned: refused).
        assert call(application, "GET", "/")[0].startswith("404")
        assert call(application, "POST", "/slack/events")[0].startswith("401")
    engine.dispose()


def test_healthz_is_503_when_the_database_is_down(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'missing' / 'bot.db'}")
    clock = FakeClock()
    health = Health(make_session_factory(engine), clock, "http", started_at=clock.now())
    with SlackDouble() as slack:
        application = wsgi_app(bolt_app(slack), health, signing_secret="secret")
        status, body = call(application, "GET", "/healthz")
    assert status.startswith("503")
    assert body["database"] == {"ok": False, "error": "OperationalError"}  # type: ignore[index]
    assert body["status"] == "unavailable"  # type: ignore[index]
    engine.dispose()


def test_waitress_serves_on_a_free_port_and_closes(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'missing' / 'bot.db'}")
    clock = FakeClock()
    health = Health(make_session_factory(engine), clock, "http", started_at=clock.now())
    with SlackDouble() as slack:
        server = HttpServer(wsgi_app(bolt_app(slack), health, signing_secret="secret"),
                            host="127.0.0.1", port=0)
        server.start()
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{server.port}/healthz", timeout=5)
        except urllib.error.HTTPError as exc:
            assert exc.code == 503 and json.loads(exc.read())["database"]["ok"] is False
        else:
            raise AssertionError("expected 503")
        finally:
            server.close()
    engine.dispose()
