"""The command line as an operator uses it: rehearse, check-config, errors without tracebacks."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests
import yaml

from bot.cli import main
from bot.config import load_settings
from bot.sandbox import build_simulator
from tests.cli.conftest import Rehearsed

ROOT = Path(__file__).resolve().parents[2]
FAST = ["--speed", "100000"]  # as fast as the machine goes: a rehearsal never sleeps
# `upgradebot` with Ctrl-C working even when the test run itself was started in the background,
# where SIGINT is inherited ignored and Python would keep it so.
CTRL_C_STOPS = ("import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
                "from bot.cli import main; sys.exit(main(sys.argv[1:]))")


@pytest.mark.slow
def test_rehearsal_on_its_embedded_default_completes(default_rehearsal: Rehearsed) -> None:
    assert default_rehearsal.status == 0
    out = default_rehearsal.out
    # The plan as it would be posted, progress, verification replies and the summary.
    assert "upgrade plan for supercluster *global*" in out
    assert "system-wide maintenance window" in out
    for cluster in ("dallas", "denver", "austin"):
        assert f"{cluster} verified" in out
        # The bot's view and the cluster's true state (not "pending" nor "verified").
        assert (f"{cluster}: 10.0.0.3 → 10.1.0.1; in service; install requests 1; now in "
                "service, in global, 2 of 2 servers up") in out
    # The final board closes the summary.
    assert "final status board:\n  R1 — completed" in out
    assert "R1 completed — full-outage upgrade of global to 10.1.0.1" in out
    assert "full outage" in out


@pytest.mark.slow
def test_rehearsal_with_a_fault_shows_the_escalation(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rehearse", *FAST, "--fault", "denver=never-returns"]) == 2
    out = capsys.readouterr().out
    assert "escalation on *denver*: call Polycom Global Services" in out
    assert "you still cannot log back in" in out
    assert "R1 escalated" in out
    assert "escalation: denver: cannot-log-in" in out
    # A cluster verified before the escalation is not called "pending".
    assert "dallas: 10.0.0.3 → 10.1.0.1; verified; install requests 1" in out
    assert "denver: 10.0.0.3 → 10.0.0.3; ESCALATED" in out
    assert "restarting (not answering)" in out


@pytest.mark.slow
def test_rehearsal_incremental(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rehearse", "global", "10.1.0.1", "--strategy", "incremental", *FAST]) == 0
    out = capsys.readouterr().out
    assert "incremental (some service maintained)" in out
    # All ten factors are shown to the approvers, numbered.
    assert "  1. It can easily take five times as long" in out
    assert "  10. Site-topology bandwidth limits" in out
    assert "R1 completed — incremental upgrade" in out


def test_rehearsal_refuses_unknown_names_clearly(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rehearse", "dalas", *FAST]) == 2
    err = capsys.readouterr().err
    assert "dallas" in err and "Traceback" not in err
    assert main(["rehearse", *FAST, "--fault", "denver=explodes"]) == 2
    err = capsys.readouterr().err
    assert "never-returns" in err and "Traceback" not in err


def test_check_config_lists_every_problem(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "upgradebot.yml"
    bad.write_text("timing:\n  poll_interval: soon\nsuperclusters:\n  - name: g\n    clusters:\n"
                   "      - {name: a, api_url: 'ftp://x', servers: 3}\n")
    monkeypatch.setenv("UPGRADEBOT_CONFIG", str(bad))
    assert main(["check-config"]) == 2
    err = capsys.readouterr().err
    assert "timing.poll_interval" in err and "servers" in err and "api_url" in err
    assert "Traceback" not in err


def test_check_config_accepts_the_documented_example(monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("UPGRADEBOT_CONFIG", str(ROOT / "bot/examples/upgradebot.example.yml"))
    assert main(["check-config"]) == 0
    assert "OK" in capsys.readouterr().out


def test_python_dash_m_bot_is_the_same_command(tmp_path: Path) -> None:
    env = {**os.environ, "UPGRADEBOT_CONFIG": str(tmp_path / "missing.yml")}
    done = subprocess.run([sys.executable, "-m", "bot", "check-config"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "missing.yml" in done.stderr and "Traceback" not in done.stderr


def test_simulate_serves_the_bundled_clusters(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env.update(UPGRADEBOT_CONFIG=str(tmp_path / "none.yml"), DMA_USERNAME="ops",
               DMA_PASSWORD="sim-pw")
    proc = subprocess.Popen([sys.executable, "-c", CTRL_C_STOPS, "simulate", "--port", "0"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout is not None
        urls = dict(proc.stdout.readline().strip().split(": ", 1) for _ in range(3))
        answer = requests.get(f"{urls['dallas']}/installed-software", auth=("ops", "sim-pw"),
                              timeout=5)
        assert answer.status_code == 200
        assert answer.json()["systemVersion"] == "10.0.0.3"
        assert requests.get(f"{urls['dallas']}/installed-software", timeout=5).status_code == 401
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()  # never leave it serving; its Popen would fail a later test when freed
            proc.wait(timeout=5)
            raise
        for stream in (proc.stdout, proc.stderr):
            if stream:
                stream.close()
    assert proc.returncode in (0, 130)


def test_plan_reads_the_live_clusters(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    settings = load_settings(ROOT / "tests/fixtures/supercluster.yml")
    with build_simulator(settings, username="ops", password="pw") as sim:
        raw = yaml.safe_load((ROOT / "tests/fixtures/supercluster.yml").read_text())
        for cluster in [*raw["superclusters"][0]["clusters"], *raw["clusters"]]:
            cluster["api_url"] = sim.url_for(cluster["name"])
        config = tmp_path / "upgradebot.yml"
        config.write_text(yaml.safe_dump(raw))
        monkeypatch.setenv("UPGRADEBOT_CONFIG", str(config))
        monkeypatch.setenv("DMA_USERNAME", "ops")
        monkeypatch.setenv("DMA_PASSWORD", "pw")
        assert main(["plan", "global", "10.0.0.4"]) == 0
        out = capsys.readouterr().out
        # Plain text: no Slack markup, no mention syntax.
        assert "10.0.0.3 → 10.0.0.4" in out and "basic (cluster by cluster)" in out
        assert "Order: dallas, denver, austin" in out
        assert "*" not in out and "<!subteam" not in out and "<@" not in out
        assert main(["plan", "global", "10.1.0.1", "--window", "2026-11-28T22:00/4h", "--tz",
                     "America/Chicago", "--json"]) == 0
        document = json.loads(capsys.readouterr().out)
        assert document["strategy"] == "full-outage" and document["order"][0] == "dallas"
        assert "America/Chicago" in document["window"]
        assert main(["plan", "global", "10.1.0.1", "--tz", "America/Chicago"]) == 2
        assert "--tz only applies to a window" in capsys.readouterr().err
        # Reading is all it does: no cluster received a state-changing request.
        assert not [r for r in sim.requests if r.method != "GET"]
        assert main(["plan", "globl", "10.0.0.4"]) == 2
        assert "did you mean 'global'" in capsys.readouterr().err
        monkeypatch.setenv("DMA_PASSWORD", "pw-Zq81x-bad")
        assert main(["plan", "lab", "10.0.0.4"]) == 2
        err = capsys.readouterr().err
        assert "credentials" in err and "pw-Zq81x-bad" not in err and "Traceback" not in err


@pytest.mark.slow
def test_rehearsal_with_a_config_file(capsys: pytest.CaptureFixture[str]) -> None:
    config = str(ROOT / "tests/fixtures/supercluster.yml")
    assert main(["rehearse", "global", "10.0.0.4", "--config", config, *FAST]) == 0
    out = capsys.readouterr().out
    assert "basic upgrade of global to 10.0.0.4" in out
    assert "austin: 10.0.0.3 → 10.0.0.4; in service; install requests 1" in out
