"""A real `upgradebot serve` process against the Slack double and a DMA simulator.

The simulator runs in the test process on the wall clock at speed 600 (a 35-minute install takes
3.5 s; a test may ask for faster); the bot's configuration points every cluster at it, with short
timings. Requests go to the bot the way Slack sends them: signed bodies over HTTP, or envelopes
over Socket Mode.
"""

from __future__ import annotations

import os
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from bot.clock import SystemClock
from bot.config import load_settings_text
from bot.sandbox import build_simulator
from bot.simulator import DmaSimulator
from storage import repo
from storage.db import make_engine, make_session_factory, unit_of_work
from tests.support.signing import sign

ROOT = Path(__file__).resolve().parents[2]
SECRET = "e2e-signing-secret"
SIM_USER, SIM_PASSWORD = "admin", "e2e-sim-password"
CONFIG = """
slack:
  channel: C0UPGRADES
  operators: [S0OPERATORS]
  approvers: [S0APPROVERS, U0APPROVER3]
  approvals_required: 2
timing:
  poll_interval: 0.2s
  login_grace: 2s
  tick: 0.2s
  lease: 5s
  drain_timeout: 1m
escalation:
  contact: "Polycom Global Services, +1 800 765 9266"
  notify: [S0ONCALL]
packages:
  "10.0.0.4": {{url: "https://files.example.com/dma/10.0.0.4.bin"}}
  "10.1.0.1": {{url: "https://files.example.com/dma/10.1.0.1.bin"}}
dma:
  timeout: 5s
  retries: 1
  backoff: 0.05s
superclusters:
  - name: global
    clusters:
      - {{name: dallas, api_url: "{dallas}", servers: 2}}
      - {{name: denver, api_url: "{denver}", servers: 2}}
clusters:
  - {{name: lab, api_url: "{lab}", servers: 1}}
simulation:
  version: "10.0.0.3"
  estimated_install_minutes: 35
  active_calls: 0
"""
PLACEHOLDER = "http://127.0.0.1:9/{}/api/rest"


@contextmanager
def simulator(faults: tuple[str, ...] = (), speed: float = 600) -> Iterator[DmaSimulator]:
    """The DMA simulator on the wall clock, 600 (or `speed`) times faster than real clusters."""
    names = {n: PLACEHOLDER.format(n) for n in ("dallas", "denver", "lab")}
    settings = load_settings_text(CONFIG.format(**names))
    sim = build_simulator(settings, clock=SystemClock(), speed=speed, faults=faults,
                          username=SIM_USER, password=SIM_PASSWORD)
    with sim:
        yield sim


def write_config(path: Path, sim: DmaSimulator) -> Path:
    """The bot's configuration, every cluster pointing at the simulator."""
    path.write_text(CONFIG.format(**{n: sim.url_for(n) for n in ("dallas", "denver", "lab")}),
                    encoding="utf-8")
    return path


@dataclass
class Latencies:
    """How long Slack waited for acks, in seconds."""

    seconds: list[float] = field(default_factory=list)

    def report(self, label: str) -> str:
        """Median and worst, as printed under `pytest -s`."""
        line = (f"{label}: {len(self.seconds)} slash commands acknowledged in median "
                f"{statistics.median(self.seconds) * 1000:.1f} ms, worst "
                f"{max(self.seconds) * 1000:.1f} ms")
        print(f"\n{line}")
        return line


class BotProcess:
    """`python -m bot serve` in a subprocess, its output collected."""

    def __init__(self, tmp: Path, *, slack_api_url: str, config: Path,
                 app_token: str | None = None, signing_secret: str | None = SECRET,
                 host: str | None = "127.0.0.1", args: tuple[str, ...] = ()) -> None:
        self.database_url = f"sqlite:///{tmp / 'bot.db'}"
        self.log = tmp / "bot.log"
        env = {k: v for k, v in os.environ.items()
               if not k.upper().startswith(("SLACK_", "DMA_", "HTTP_PROXY", "HTTPS_PROXY"))}
        env.update(SLACK_BOT_TOKEN="xoxb-e2e",
                   SLACK_API_URL=slack_api_url, DATABASE_URL=self.database_url,
                   UPGRADEBOT_CONFIG=str(config), DMA_USERNAME=SIM_USER,
                   DMA_PASSWORD=SIM_PASSWORD, PYTHONUNBUFFERED="1")
        if app_token:
            env["SLACK_APP_TOKEN"] = app_token
        if signing_secret:
            env["SLACK_SIGNING_SECRET"] = signing_secret
        self.env = env
        self.args = (*(("--host", host) if host else ()), "--port", "0", *args)
        self.lines: list[str] = []
        self.port: int | None = None
        self.proc: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None

    def start(self, timeout: float = 30.0) -> BotProcess:
        """Start serving and wait until it says it is ready."""
        self.lines.clear()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bot", "serve", *self.args],
            cwd=ROOT, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self._reader = threading.Thread(target=self._read, args=(self.proc,), daemon=True)
        self._reader.start()
        self.wait_for_output(r"listening on http://127\.0\.0\.1:(\d+)|connected to Slack",
                             timeout)
        match = next((re.search(r":(\d+) ", line) for line in self.lines
                      if "listening on" in line), None)
        self.port = int(match.group(1)) if match else None
        return self

    def _read(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            self.lines.append(line.rstrip("\n"))
            with self.log.open("a", encoding="utf-8") as log:
                log.write(line)

    def wait_for_output(self, pattern: str, timeout: float) -> None:
        """Wait for a line of output matching `pattern`, or fail showing the output."""
        deadline = time.monotonic() + timeout
        while not any(re.search(pattern, line) for line in self.lines):
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError("the bot exited:\n" + "\n".join(self.lines[-40:]))
            if time.monotonic() > deadline:
                raise AssertionError(f"no {pattern!r} within {timeout}s:\n"
                                     + "\n".join(self.lines[-40:]))
            time.sleep(0.02)

    def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM, and wait for a clean exit."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
            raise AssertionError("the bot did not stop on SIGTERM:\n"
                                 + "\n".join(self.lines[-40:])) from None
        self._close_output()
        return code

    def kill(self) -> None:
        """Make sure the process is gone and its pipe closed (test teardown)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=5)
        self._close_output()

    def _close_output(self) -> None:
        if self._reader is not None:
            self._reader.join(timeout=5)  # it ends at the pipe's end: every line is in
            self._reader = None
        if self.proc is not None and self.proc.stdout is not None:
            self.proc.stdout.close()

    # -- the HTTP side, as Slack calls it ----------------------------------------------------

    def post(self, body: str, *, headers: dict[str, str] | None = None,
             latencies: Latencies | None = None) -> tuple[int, str]:
        """POST a signed body to /slack/events; return (status, body) and time the answer."""
        signed = {**sign(SECRET, body, int(time.time())), **(headers or {})}
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}/slack/events",
                                         data=body.encode(), headers=signed, method="POST")
        started = time.perf_counter()
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                status, text = answer.status, answer.read().decode()
        except urllib.error.HTTPError as exc:
            status, text = exc.code, exc.read().decode()
        if latencies is not None:
            latencies.seconds.append(time.perf_counter() - started)
        return status, text

    def get(self, path: str) -> tuple[int, str]:
        """GET a path of the bot's HTTP server."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=5) as a:
                return a.status, a.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    # -- the database, read directly ---------------------------------------------------------

    def run_status(self, name: str = "R1") -> str | None:
        """The run's status as stored (None before it exists)."""
        engine = make_engine(self.database_url)
        try:
            with unit_of_work(make_session_factory(engine)) as session:
                run = repo.get_run(session=session, ref=name)
                return run.status if run else None
        finally:
            engine.dispose()


    def waiting_messages(self) -> list[str]:
        """The texts of the messages the outbox has not delivered yet."""
        engine = make_engine(self.database_url)
        try:
            with unit_of_work(make_session_factory(engine)) as session:
                return [str(m.payload.get("text", ""))
                        for m in repo.unsent_messages(session=session)]
        finally:
            engine.dispose()


def wait_until(predicate: Callable[[], bool], timeout: float, what: str,
               bot: BotProcess | None = None) -> None:
    """Poll with a deadline; on failure show the run's state and the bot's last output."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            seen = "" if bot is None else (
                f"\nR1 is {bot.run_status()}; waiting messages: {bot.waiting_messages()[:5]}"
                "\n" + "\n".join(bot.lines[-30:]))
            raise AssertionError(f"timed out after {timeout}s waiting for {what}{seen}")
        time.sleep(0.05)
