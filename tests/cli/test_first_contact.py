"""First contact: init, check-config, no-config hints, db upgrade, --help texts, files."""

from __future__ import annotations

import argparse
import json
import logging
import zipfile
from pathlib import Path

import pytest

from bot.cli import _log_at_info, main
from bot.config import STARTER_EXAMPLE, load_settings
from bot.sandbox import build_simulator
from bot.simulator import FaultKind
from tests.cli.conftest import Rehearsed
from tests.support.engine_harness import harness

ROOT = Path(__file__).resolve().parents[2]


def _config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str) -> Path:
    path = tmp_path / "upgradebot.yml"
    path.write_text(text)
    monkeypatch.setenv("UPGRADEBOT_CONFIG", str(path))
    return path


def test_init_writes_a_starter_that_checks_and_never_overwrites(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "upgradebot.yml"
    monkeypatch.setenv("UPGRADEBOT_CONFIG", str(target))
    assert main(["init"]) == 0
    assert "upgradebot check-config" in capsys.readouterr().out
    text = target.read_text()
    assert text.startswith("# Written by `upgradebot init`") and "# Who may approve" in text
    assert main(["check-config"]) == 0
    assert "OK — 1 supercluster, 3 clusters, 2 packages" in capsys.readouterr().out

    target.write_text("# mine\n")
    assert main(["init"]) == 2
    assert "exists already; not overwritten" in capsys.readouterr().err
    assert target.read_text() == "# mine\n"
    assert main(["init", str(tmp_path / "no-such-dir" / "x.yml")]) == 2
    assert "does not exist" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["check-config", "plan", "worker"])
def test_no_config_names_init_and_the_bundled_example(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        command: str) -> None:
    monkeypatch.setenv("UPGRADEBOT_CONFIG", str(tmp_path / "missing.yml"))
    argv = [command, "global", "10.1.0.1"] if command == "plan" else [command]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "missing.yml" in err and "upgradebot init" in err and str(STARTER_EXAMPLE) in err


@pytest.mark.parametrize(("text", "expected"), [
    ("", ["the inventory is empty", "slack.operators: nobody", "slack.approvers: nobody",
          "NOT usable — 0 superclusters, 0 clusters, 0 packages; 3 problems above"]),
    ("slack: {operators: [U0OPS], approvers: [U0APP], approvals_required: 1}\n"
     "clusters: [{name: lab, api_url: 'https://lab.example.com/api/rest', servers: 1}]\n",
     ["OK — 0 superclusters, 1 cluster, 0 packages"]),
    ("slack: {approvers: [U0APP], approvals_required: 1}\n"
     "clusters: [{name: lab, api_url: 'https://lab.example.com/api/rest', servers: 1}]\n",
     ["slack.operators: nobody may plan", "1 problem above"]),
])
def test_check_config_refuses_what_could_not_run_and_counts_in_english(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        text: str, expected: list[str]) -> None:
    _config(tmp_path, monkeypatch, text)
    code = main(["check-config"])
    out = capsys.readouterr().out
    assert code == (0 if expected[0].startswith("OK") else 2)
    for words in expected:
        assert words in out


def test_db_upgrade_names_the_database_without_its_password(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'bot.db'}"
    monkeypatch.setenv("DATABASE_URL", url)
    assert main(["db", "upgrade"]) == 0
    assert f"{url} is at the newest schema" in capsys.readouterr().out

    monkeypatch.setenv("DATABASE_URL", "postgresql://bot:Hush-91x@127.0.0.1:1/bot")
    assert main(["db", "upgrade"]) == 2
    captured = capsys.readouterr()
    assert "upgrading postgresql://bot:***@127.0.0.1:1/bot" in captured.out
    assert "Hush-91x" not in captured.out + captured.err
    assert "Traceback" not in captured.err


@pytest.mark.parametrize("url", ["mysql://bot:Hush-91x@db/bot", "not a url at all"])
def test_an_unsupported_database_url_is_one_clear_line(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], url: str) -> None:
    monkeypatch.setenv("DATABASE_URL", url)
    assert main(["db", "upgrade"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert "expected" in err or "SQLite or PostgreSQL" in err
    assert "sqlite:///FILE.db or postgresql+psycopg://" in err
    assert "Hush-91x" not in err and "Traceback" not in err


def test_help_lists_fault_kinds_and_the_simulators_admin_api(
        capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["rehearse", "--help"], ["simulate", "--help"]):
        with pytest.raises(SystemExit):
            main(argv)
        out = capsys.readouterr().out
        assert all(kind.value in out for kind in FaultKind)
    assert "GET    /_sim/state" in out and "POST   /_sim/faults" in out


def test_the_simulators_state_is_readable_json() -> None:
    settings = load_settings(ROOT / "tests/fixtures/supercluster.yml")
    sim = build_simulator(settings, username="a", password="b")
    body = sim.dispatch("GET", "/_sim/state", {}, b"", "127.0.0.1").payload().decode()
    assert body.startswith("{\n  ") and json.loads(body)["clusters"]["dallas"]


def test_long_running_processes_log_at_info() -> None:
    root = logging.getLogger()
    before = root.level
    try:
        root.setLevel(logging.WARNING)
        _log_at_info(argparse.Namespace(verbose=False))
        assert root.level == logging.INFO
        assert logging.getLogger("bot.worker.runner").isEnabledFor(logging.INFO)
        assert not logging.getLogger("apscheduler").isEnabledFor(logging.INFO)
    finally:
        root.setLevel(before)


@pytest.mark.slow
def test_rehearse_writes_its_timeline(default_rehearsal: Rehearsed, tmp_path: Path) -> None:
    # The default rehearsal ran with --timeline FILE (tests/cli/conftest.py).
    assert default_rehearsal.status == 0
    assert f"timeline picture written to {default_rehearsal.timeline}" in default_rehearsal.out
    assert default_rehearsal.timeline.read_bytes().startswith(b"\x89PNG")
    assert main(["rehearse", "--timeline", str(tmp_path / "nowhere" / "x.png")]) == 2


@pytest.mark.slow
def test_timeline_and_evidence_of_a_stored_run(
        sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    with harness(sqlite_url) as h:
        assert h.drive(h.plan(target="lab", version="10.1.0.1")) == "completed"
    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    monkeypatch.setenv("UPGRADEBOT_CONFIG", str(tmp_path / "none.yml"))
    assert main(["timeline", "R1", "-o", str(tmp_path / "r1.png")]) == 0
    assert "R1: timeline written to" in capsys.readouterr().out
    assert (tmp_path / "r1.png").read_bytes().startswith(b"\x89PNG")
    assert main(["evidence", "R1", "-o", str(tmp_path / "r1.zip")]) == 0
    assert "R1/plan.txt" in zipfile.ZipFile(tmp_path / "r1.zip").namelist()
    assert main(["evidence", "R9"]) == 2
    assert "no run R9" in capsys.readouterr().err


def test_every_fault_kind_is_described() -> None:
    from bot.simulator.kinds import FAULT_HELP

    assert set(FAULT_HELP) == set(FaultKind)
