"""The `upgradebot` command line: configuration is read once here and passed down."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence

from sqlalchemy.exc import SQLAlchemyError

from bot.config import ConfigError, Environment, Settings, UnknownTarget, load_settings
from bot.dma.errors import DmaError
from bot.engine.planner import PlanningError
from bot.engine.windows import WindowError
from bot.services import ServiceError

log = logging.getLogger("upgradebot")

EXPECTED = (ConfigError, UnknownTarget, ServiceError, PlanningError, WindowError, DmaError,
            ValueError, KeyError)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(prog="upgradebot", description=(
        "Upgrade Polycom RealPresence DMA clusters and superclusters the vendor's way."))
    parser.add_argument("-v", "--verbose", action="store_true", help="log at DEBUG level")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    reh = sub.add_parser("rehearse", help="run a whole upgrade against the built-in simulator")
    reh.add_argument("target", nargs="?", help="supercluster or cluster (default: the first)")
    reh.add_argument("version", nargs="?", help="target version (default: newest package)")
    reh.add_argument("--strategy", default="auto",
                     choices=["auto", "basic", "full-outage", "incremental"])
    reh.add_argument("--speed", type=float, default=600.0,
                     help="how many times faster than real time (default 600)")
    reh.add_argument("--fault", action="append", default=[], metavar="CLUSTER=KIND",
                     help="inject a fault, e.g. dallas=never-returns, denver=slow-install:4")
    reh.add_argument("--config", help="use this config's inventory instead of the bundled one")
    reh.add_argument("--timeout", type=float, default=300.0, help="real seconds at most")
    pln = sub.add_parser("plan", help="print the plan for the real inventory (read-only)")
    pln.add_argument("target")
    pln.add_argument("version")
    pln.add_argument("--strategy", default="auto",
                     choices=["auto", "basic", "full-outage", "incremental"])
    sim = sub.add_parser("simulate", help="serve simulated clusters of the config for manual tries")
    sim.add_argument("--port", type=int, default=8443)
    sim.add_argument("--speed", type=float, default=60.0)
    sim.add_argument("--fault", action="append", default=[], metavar="CLUSTER=KIND")
    sub.add_parser("check-config", help="validate the config file and list every problem")
    srv = sub.add_parser("serve", help="run the bot: Slack (Socket Mode when SLACK_APP_TOKEN is "
                                       "set, else HTTP), the worker and the outbox")
    srv.add_argument("--port", type=int, default=3000,
                     help="HTTP mode: port for /slack/events and /healthz (default 3000; 0 picks "
                          "a free one)")
    srv.add_argument("--host", default="0.0.0.0", help="HTTP mode: address to listen on")
    wrk = sub.add_parser("worker", help="run only the worker (no Slack) against DATABASE_URL")
    wrk.add_argument("--id", help="worker id in the audit trail")
    db = sub.add_parser("db", help="database maintenance")
    db.add_argument("action", choices=["upgrade"], help="apply the migrations (alembic)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    env = Environment.from_env(os.environ)
    command = args.command or "rehearse"
    if args.command is None:
        args = build_parser().parse_args(["rehearse"])
    try:
        return COMMANDS[command](args, env)
    except EXPECTED as exc:
        message = exc.format() if isinstance(exc, ConfigError) else str(exc)
        print(f"upgradebot {command}: {message}", file=sys.stderr)
        return 2
    except SQLAlchemyError as exc:
        # Say which database and what failed, without the URL's password or a traceback.
        print(f"upgradebot {command}: database error: {type(exc).__name__}: "
              f"{str(exc).splitlines()[0]}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _settings(env: Environment) -> Settings:
    settings = load_settings(env.config_path)
    for warning in settings.tls_warnings():
        log.warning("%s", warning)
    return settings


def _credentials(env: Environment) -> tuple[str, str]:
    if not env.dma_username or not env.dma_password:
        raise ServiceError("set DMA_USERNAME and DMA_PASSWORD (a DMA admin account)")
    return env.dma_username, env.dma_password


def cmd_rehearse(args: argparse.Namespace, env: Environment) -> int:
    """Run the rehearsal."""
    from bot.rehearsal import rehearse

    return rehearse(config=args.config, target=args.target, version=args.version,
                    strategy=args.strategy, speed=args.speed, faults=args.fault,
                    timeout_s=args.timeout)


def cmd_plan(args: argparse.Namespace, env: Environment) -> int:
    """Print a plan computed from the live clusters."""
    from bot.clients import ClientFactory
    from bot.clock import SystemClock
    from bot.messages import plan_message
    from bot.services import Services
    from storage.db import make_engine, make_session_factory

    settings = _settings(env)
    user, password = _credentials(env)
    services = Services(settings=settings, sessions=make_session_factory(
        make_engine("sqlite://")), clock=SystemClock(),
        clients=ClientFactory(settings, username=user, password=password))
    plan = services.plan(args.target, args.version, args.strategy)
    slack = settings.slack
    print(plan_message("(not submitted)", plan, window=None,
                       approvals_required=slack.approvals_required, approvers=slack.approvers,
                       approve_reaction=slack.approve_reaction,
                       reject_reaction=slack.reject_reaction, requester="cli")["text"])
    return 0


def cmd_simulate(args: argparse.Namespace, env: Environment) -> int:
    """Serve the config's inventory (or the bundled example) as simulated clusters."""
    from bot.rehearsal import bundled_settings
    from bot.sandbox import build_simulator
    from bot.simulator import serve

    settings = (load_settings(env.config_path) if os.path.exists(env.config_path)
                else bundled_settings())
    user = env.dma_username or "admin"
    sim = build_simulator(settings, speed=args.speed, faults=args.fault, username=user,
                          password=env.dma_password or "admin", port=args.port)
    with sim:
        for spec in settings.all_clusters():
            print(f"{spec.name}: {sim.url_for(spec.name)}", flush=True)
        print(f"admin: {sim.base_url}/_sim/state  (user {user}); Ctrl-C stops", flush=True)
        serve(sim)
    return 0


def cmd_check_config(args: argparse.Namespace, env: Environment) -> int:
    """Validate the config file."""
    settings = load_settings(env.config_path)
    print(f"{env.config_path}: OK — {len(settings.superclusters)} superclusters, "
          f"{len(settings.all_clusters())} clusters, {len(settings.packages)} packages")
    for warning in settings.tls_warnings():
        print(f"warning: {warning}")
    return 0


def cmd_db(args: argparse.Namespace, env: Environment) -> int:
    """Apply the database migrations."""
    from storage.db import upgrade_database

    upgrade_database(env.database_url)
    print("database is at the newest schema")
    return 0


def cmd_worker(args: argparse.Namespace, env: Environment) -> int:
    """Run the worker alone until SIGTERM/SIGINT (several may share one database)."""
    from bot.clients import ClientFactory
    from bot.clock import SystemClock
    from bot.worker.scheduler import start_worker
    from storage.db import make_engine, make_session_factory, upgrade_database

    settings = _settings(env)
    user, password = _credentials(env)
    upgrade_database(env.database_url)
    sessions = make_session_factory(make_engine(env.database_url))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    scheduler, worker = start_worker(
        sessions=sessions, settings=settings, clock=SystemClock(),
        clients=ClientFactory(settings, username=user, password=password), worker_id=args.id)
    print(f"worker {worker.worker_id} running", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        stop.wait()
    scheduler.shutdown(wait=True)
    return 0


def cmd_serve(args: argparse.Namespace, env: Environment) -> int:
    """Run the Slack bot with its worker until SIGTERM/SIGINT."""
    from bot.slack.runtime import ServeOptions, serve

    settings = _settings(env)
    _credentials(env)
    if not args.verbose:
        logging.getLogger().setLevel(logging.INFO)
    logging.getLogger("slack_bolt").setLevel(logging.INFO)  # its DEBUG logs request bodies
    logging.getLogger("upgradebot.bolt").setLevel(logging.INFO)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)  # a line per tick otherwise
    for name in ("SLACK_CLIENT_ID", "SLACK_CLIENT_SECRET"):
        if os.environ.pop(name, None) is not None:  # bolt would silently switch to OAuth
            log.warning("%s ignored: this bot is installed in one workspace with a bot token",
                        name)
    for name in ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN"):
        # Read once above (env); libraries must not pick them up again behind our back.
        os.environ.pop(name, None)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    return serve(settings, env, stop=stop, options=ServeOptions(host=args.host, port=args.port),
                 announce=lambda line: print(line, flush=True))


COMMANDS = {"rehearse": cmd_rehearse, "plan": cmd_plan, "simulate": cmd_simulate,
            "check-config": cmd_check_config, "db": cmd_db, "worker": cmd_worker,
            "serve": cmd_serve}
