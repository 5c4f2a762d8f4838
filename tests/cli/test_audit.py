"""The audit trail visible: `/upgrade audit RUN` answers privately with who approved what and
when and every state change; `upgradebot audit RUN --format json|csv` exports it."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from bot.cli import main
from tests.support.workspace import APPROVERS, OPERATOR, VISITOR, Workspace, workspace


def story(ws: Workspace) -> None:
    """Plan, one approval by button, one by reaction (the run starts), a pause."""
    ws.command("plan lab 10.1.0.1")
    ws.click("plan_approve", user=APPROVERS[0])
    ws.react(APPROVERS[1])
    ws.acknowledge()  # the guide's manual checklist: the run starts
    ws.command("pause R1")


def test_audit_answers_privately_with_who_did_what_and_when(ws: Workspace) -> None:
    story(ws)
    reply = ws.command("audit R1", user=VISITOR)
    [answer] = reply.responses
    assert answer["response_type"] == "ephemeral"
    text = answer["text"]
    assert text.startswith("Audit trail of R1 (lab → 10.1.0.1, now paused):")
    for said in (f"<@{OPERATOR}> · planned it (basic strategy)",
                 f"<@{APPROVERS[0]}> · approved (button)",
                 f"<@{APPROVERS[1]}> · approved (reaction)",
                 "approve: awaiting_approval → approved", "start: approved → running",
                 f"<@{OPERATOR}> · pause: running → paused", f"<@{OPERATOR}> · asked to pause",
                 f"<@{OPERATOR}> · acknowledged "):
        assert said in text, said
    lines = text.splitlines()[1:]
    assert lines == sorted(lines, key=lambda line: line[:19])  # oldest first, with times
    assert all(" UTC · " in line for line in lines)
    assert ws.private(VISITOR) == []  # nothing posted in the channel for everyone either


def test_audit_of_an_unknown_or_absurd_run_is_no_such_run(ws: Workspace) -> None:
    assert ws.command("audit R7").texts()[-1].startswith("⚠️ no run R7")
    assert ws.command("audit").texts()[-1].startswith("⚠️ `audit` expects one RUN")
    assert "no run R99999999999…" in ws.command("audit R" + "9" * 50).texts()[-1]


@pytest.fixture
def audited(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    with workspace(tmp_path) as ws:
        story(ws)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'bot.db'}")
    return tmp_path


def test_cli_exports_json(audited: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit", "R1", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert (data["run"], data["target"], data["status"]) == ("R1", "lab", "paused")
    actions = [(e["actor"], e["action"]) for e in data["entries"]]
    assert (APPROVERS[0], "approval.given") in actions
    assert (APPROVERS[1], "approval.given") in actions
    assert (OPERATOR, "run.pause") in actions
    given = [e for e in data["entries"] if e["action"] == "approval.given"]
    assert [e["detail"]["source"] for e in given] == ["button", "reaction"]
    assert all(e["at"].endswith("+00:00") for e in data["entries"])


def test_cli_exports_csv_to_a_file(audited: Path) -> None:
    out = audited / "audit.csv"
    assert main(["audit", "r1", "--format", "csv", "-o", str(out)]) == 0
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert rows[0].keys() == {"run", "at", "actor", "action", "step", "detail"}
    assert {r["run"] for r in rows} == {"R1"}
    assert [r["actor"] for r in rows if r["action"] == "approval.given"] == list(APPROVERS[:2])
    assert all(isinstance(json.loads(r["detail"]), dict) for r in rows)


def test_cli_says_what_is_wrong(audited: Path, capsys: pytest.CaptureFixture[str],
                                monkeypatch: pytest.MonkeyPatch) -> None:
    assert main(["audit", "R9"]) == 2
    assert "no run R9" in capsys.readouterr().err
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{audited / 'missing.db'}")
    assert main(["audit", "R1"]) == 2
    assert "no database at" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["audit", "R1", "--format", "xml"])
