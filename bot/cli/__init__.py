"""The `upgradebot` command line: configuration is read once here and passed down."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence
from typing import NoReturn

from sqlalchemy.exc import SQLAlchemyError

from bot import logs
from bot.app.core import dma_credentials
from bot.cli import files, first
from bot.config import Environment, Settings, load_settings
from bot.errors import EXPECTED, incident
from bot.simulator import fault_help

log = logging.getLogger("upgradebot")
WATCHDOG_MARGIN_S = 0.5  # the watchdog ends the process this long before the stop budget is up
SIGNAL_POLL_S = 0.05  # how soon the watchdog notices a signal


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(prog="upgradebot", description=(
        "Upgrade Polycom RealPresence DMA clusters and superclusters the vendor's way."))
    parser.add_argument("-v", "--verbose", action="store_true", help="log at DEBUG level")
    parser.add_argument("--log-format", choices=logs.FORMATS, default=None,
                        help="text (default) or json: one JSON object per line (also "
                             "LOG_FORMAT)")
    # Also accepted after `serve` and `worker`, where people look for it.
    log_format = argparse.ArgumentParser(add_help=False)
    log_format.add_argument("--log-format", choices=logs.FORMATS, default=argparse.SUPPRESS,
                            help="text or json (also LOG_FORMAT)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    reh = sub.add_parser("rehearse", help="run a whole upgrade against the built-in simulator",
                         epilog="fault kinds (--fault CLUSTER=KIND):\n" + fault_help(),
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    reh.add_argument("target", nargs="?", help="supercluster or cluster (default: the first)")
    reh.add_argument("version", nargs="?", help="target version (default: newest package)")
    reh.add_argument("--strategy", default="auto",
                     choices=["auto", "basic", "full-outage", "incremental"])
    reh.add_argument("--speed", type=float, default=600.0,
                     help="how many times faster than real time (default 600)")
    reh.add_argument("--fault", action="append", default=[], metavar="CLUSTER=KIND",
                     help="inject a fault, e.g. dallas=never-returns, denver=slow-install:4 "
                          "(kinds below)")
    reh.add_argument("--recover", choices=["rollback", "restore"],
                     help="after a stop, rehearse the way back: roll the failed cluster back, "
                          "or restore service (then every cluster ends in service)")
    reh.add_argument("--config", help="use this config's inventory instead of the bundled one")
    reh.add_argument("--timeout", type=float, default=300.0, help="real seconds at most")
    reh.add_argument("--timeline", metavar="FILE",
                     help="also write the run's timeline picture (PNG) to FILE")
    first.add_parsers(sub)
    srv = sub.add_parser("serve", parents=[log_format],
                         help="run the bot: Slack (Socket Mode when SLACK_APP_TOKEN is set, "
                              "else HTTP), the worker and the outbox")
    srv.add_argument("--port", type=int, default=3000,
                     help="port for /healthz and /metrics, and in HTTP mode /slack/events "
                          "(default 3000; 0 picks a free one)")
    srv.add_argument("--host", default=None,
                     help="address to listen on (default: 0.0.0.0 in HTTP mode, 127.0.0.1 in "
                          "Socket Mode, where only health and metrics are served)")
    wrk = sub.add_parser("worker", parents=[log_format],
                         help="run only the worker (no Slack) against DATABASE_URL")
    wrk.add_argument("--id", help="worker id in the audit trail")
    wrk.add_argument("--port", type=int, default=None,
                     help="serve this worker's /healthz and /metrics on this port (0 picks a "
                          "free one; default: none)")
    wrk.add_argument("--host", default="127.0.0.1",
                     help="address for --port (default 127.0.0.1)")
    aud = sub.add_parser("audit", help="export a run's audit trail (who approved what and when, "
                                       "every state change) from DATABASE_URL")
    aud.add_argument("run", help="the run, e.g. R12")
    aud.add_argument("--format", choices=["json", "csv"], default="json")
    aud.add_argument("-o", "--output", help="write to this file instead of standard output")
    files.add_parsers(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    args = build_parser().parse_args(argv)
    env = Environment.from_env(os.environ)
    command = args.command or "rehearse"
    try:
        fmt = args.log_format or logs.parse_format(env.log_format)
    except ValueError as exc:
        print(f"upgradebot {command}: LOG_FORMAT: {exc}", file=sys.stderr)
        return 2
    logs.configure(fmt, level=logging.DEBUG if args.verbose else logging.WARNING)
    logs.redact(*env.secrets())
    if args.command is None:
        args = build_parser().parse_args(["rehearse"])
    try:
        return COMMANDS[command](args, env)
    except EXPECTED as exc:
        _fail(f"upgradebot {command}: {exc}")
        return 2
    except SQLAlchemyError as exc:
        # Say which database and what failed, without the URL's password or a traceback.
        _fail(f"upgradebot {command}: database error: {type(exc).__name__}: "
              f"{str(exc).splitlines()[0]}")
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a bug: one line for the person, the traceback in the log
        _fail(f"upgradebot {command}: internal error ({type(exc).__name__}, incident "
              f"{incident(exc, where=f'upgradebot {command}', level=logging.DEBUG)}); run again "
              "with -v for the details")
        return 1


def _fail(line: str) -> None:
    """One line on stderr saying why the command failed (a JSON record in JSON mode)."""
    if logs.current_format() == "json":
        log.error("%s", line)
    else:
        print(logs.scrub(line), file=sys.stderr)


def _settings(env: Environment) -> Settings:
    settings = load_settings(env.config_path)
    for warning in settings.tls_warnings():
        log.warning("%s", warning)
    return settings


def cmd_rehearse(args: argparse.Namespace, env: Environment) -> int:
    """Run the rehearsal."""
    from bot.rehearsal import rehearse

    return rehearse(config=args.config, target=args.target, version=args.version,
                    strategy=args.strategy, speed=args.speed, faults=args.fault,
                    timeout_s=args.timeout, recover=args.recover, timeline=args.timeline)


def cmd_audit(args: argparse.Namespace, env: Environment) -> int:
    """Export a run's audit trail as JSON or CSV."""
    from bot.app.audit import export_audit

    text = export_audit(env, args.run, args.format)
    if args.output:
        with open(args.output, "w", encoding="utf-8", newline="") as out:
            out.write(text)
    else:
        sys.stdout.write(text)
    return 0


def cmd_worker(args: argparse.Namespace, env: Environment) -> int:
    """Run the worker alone until SIGTERM/SIGINT (several may share one database)."""
    from bot.app.worker import run_worker

    settings = _settings(env)
    dma_credentials(env)
    if not args.verbose:  # -v keeps everything, the scheduler's lines included
        logging.getLogger().setLevel(logging.INFO)
        logging.getLogger("apscheduler").setLevel(logging.WARNING)  # a line per tick otherwise
    _exit_after_stop(run_worker(settings, env, stop=_stop_on_signals(), worker_id=args.id,
                                announce=logs.banner, host=args.host, port=args.port))


def cmd_serve(args: argparse.Namespace, env: Environment) -> int:
    """Run the Slack bot with its worker until SIGTERM/SIGINT."""
    from bot.app.serve import ServeOptions, serve

    settings = _settings(env)
    dma_credentials(env)
    _log_at_info(args)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)  # a line per tick otherwise
    logging.getLogger("slack_bolt").setLevel(logging.INFO)  # its DEBUG logs request bodies
    logging.getLogger("upgradebot.bolt").setLevel(logging.INFO)
    for name in ("SLACK_CLIENT_ID", "SLACK_CLIENT_SECRET"):
        if os.environ.pop(name, None) is not None:  # bolt would silently switch to OAuth
            log.warning("%s ignored: this bot is installed in one workspace with a bot token",
                        name)
    for name in ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN"):
        # Read once above (env); libraries must not pick them up again behind our back.
        os.environ.pop(name, None)
    stop = _stop_on_signals()
    _exit_after_stop(serve(settings, env, stop=stop,
                           options=ServeOptions(host=args.host, port=args.port),
                           announce=logs.banner))


def _log_at_info(args: argparse.Namespace) -> None:
    """Long-running processes say what they do at INFO (DEBUG with -v), not every tick."""
    if not args.verbose:
        logging.getLogger().setLevel(logging.INFO)
        logging.getLogger("apscheduler").setLevel(logging.WARNING)  # a line per tick otherwise


def _stop_on_signals() -> threading.Event:
    """An event set on SIGTERM or SIGINT; the process ends within STOP_BUDGET_S of the signal.

    The handler only notes the signal: it runs in the main thread, maybe while that thread holds
    the event's own lock inside wait(), where setting the event would deadlock or be missed. A
    watchdog thread sets the event, then ends the process if the stop overruns.
    """
    from bot.worker.scheduler import STOP_BUDGET_S

    received: list[int] = []
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda number, _: received.append(number))
    stop = threading.Event()
    threading.Thread(target=_watch_for_signals, daemon=True, name="upgradebot-stop-watchdog",
                     args=(received, stop, STOP_BUDGET_S - WATCHDOG_MARGIN_S)).start()
    return stop


def _watch_for_signals(received: list[int], stop: threading.Event, exit_after_s: float) -> None:
    """Set `stop` once a signal came; end the process if the stop takes over `exit_after_s`."""
    while not received:
        time.sleep(SIGNAL_POLL_S)
    stop.set()
    time.sleep(exit_after_s)
    # No logging here: a stuck thread may hold the log handler's lock.
    line = f"upgradebot: stop took over {exit_after_s:g} s; exiting anyway"
    if logs.current_format() == "json":
        line = logs.json_line("WARNING", line)
    os.write(2, f"{line}\n".encode())
    os._exit(0)


def _exit_after_stop(abandoned: Sequence[str]) -> NoReturn:
    """Leave with status 0 once stopped, naming what was abandoned.

    The exit skips the interpreter's own clean-up: everything that matters is closed by now, it
    would wait for an abandoned visit's thread, and on a busy host it alone can take a second.
    """
    if abandoned:
        log.warning("stopped without waiting for: %s (a visit's lease expires and another "
                    "worker takes its step over)", ", ".join(abandoned))
    logging.shutdown()  # flushes the log handlers
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


COMMANDS = {"rehearse": cmd_rehearse, "plan": first.cmd_plan, "simulate": first.cmd_simulate,
            "check-config": first.cmd_check_config, "db": first.cmd_db, "init": first.cmd_init,
            "worker": cmd_worker, "serve": cmd_serve, "audit": cmd_audit,
            "timeline": files.cmd_timeline, "evidence": files.cmd_evidence}
