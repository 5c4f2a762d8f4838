"""First contact: `init`, `check-config`, `plan`, `simulate` and `db upgrade`, with plain output."""

from __future__ import annotations

import argparse
import json
import os
from datetime import UTC, datetime
from pathlib import Path

from bot.config import NO_CONFIG_HINT, STARTER_EXAMPLE, Environment, Settings, load_settings
from bot.engine.errors import UserError

SIMULATE_HELP = """\
Serve the config's clusters (or the bundled example's) as simulated DMAs on 127.0.0.1.
Each cluster answers the DMA REST API under http://127.0.0.1:PORT/<cluster>/api/rest/...
(Basic auth: DMA_USERNAME / DMA_PASSWORD, default admin / admin).

Admin API (loopback only, JSON, indented for reading):
  GET    /_sim/state              every cluster: versions, servers, supercluster, territories,
                                  calls, faults, upgrade history
  GET    /_sim/requests           every request received so far (method, path, status)
  POST   /_sim/faults             inject a fault: {"cluster": "denver", "kind": "one-server"}
                                  (optional "factor", "probability", "mode", "minutes")
  DELETE /_sim/faults[/CLUSTER]   clear the faults of one cluster, or of all

Fault kinds (also for --fault CLUSTER=KIND):
"""


def plural(count: int, word: str, many: str | None = None) -> str:
    """Count in proper English: 1 supercluster, 2 superclusters, 0 clusters."""
    return f"{count} {word if count == 1 else many or word + 's'}"


def cmd_init(args: argparse.Namespace, env: Environment) -> int:
    """Write a commented starter config; never overwrite one."""
    path = Path(args.path or env.config_path)
    if path.exists():
        raise UserError(f"{path} exists already; not overwritten (move it away, or give "
                        "another path: `upgradebot init PATH`)")
    if not path.parent.is_dir():
        raise UserError(f"cannot write {path}: the folder {path.parent} does not exist")
    example = STARTER_EXAMPLE.read_text(encoding="utf-8")
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    path.write_text(f"# Written by `upgradebot init` on {stamp} from the bundled example.\n"
                    + example, encoding="utf-8")
    print(f"wrote {path}: a commented starter configuration.\n"
          "Next: put your clusters under superclusters:/clusters:, your Slack user or group "
          "ids under slack.operators and slack.approvers, your packages' URLs and SHA-1s, "
          f"then run `upgradebot check-config`"
          + ("" if str(path) == env.config_path else f" with UPGRADEBOT_CONFIG={path}") + ".")
    return 0


def cmd_check_config(args: argparse.Namespace, env: Environment) -> int:
    """Validate the config file, and refuse one that could not run an upgrade."""
    settings = load_settings(env.config_path)
    problems = usable_problems(settings)
    for warning in settings.tls_warnings():
        print(f"warning: {warning}")
    counts = (f"{plural(len(settings.superclusters), 'supercluster')}, "
              f"{plural(len(settings.all_clusters()), 'cluster')}, "
              f"{plural(len(settings.packages), 'package')}")
    if problems:
        for problem in problems:
            print(f"{env.config_path}: {problem}")
        print(f"{env.config_path}: NOT usable — {counts}; "
              f"{plural(len(problems), 'problem')} above")
        return 2
    print(f"{env.config_path}: OK — {counts}")
    return 0


def usable_problems(settings: Settings) -> list[str]:
    """What a valid file still lacks to run an upgrade: an inventory, operators, approvers."""
    problems = []
    if not settings.all_clusters():
        problems.append("superclusters, clusters: the inventory is empty; list at least one "
                        "cluster with its name, api_url and servers")
    if not settings.slack.operators:
        problems.append("slack.operators: nobody may plan or control a run; list Slack user "
                        "ids (U…) or user-group ids (S…)")
    if not settings.slack.approvers:
        problems.append("slack.approvers: nobody may approve a plan; list Slack user ids (U…) "
                        "or user-group ids (S…)")
    return problems


def cmd_plan(args: argparse.Namespace, env: Environment) -> int:
    """Print a plan computed from the live clusters, as plain text or JSON (read-only)."""
    from bot.app.core import build_core, dma_clients, open_database
    from bot.clock import SystemClock
    from bot.engine.planner import plan_to_json
    from bot.engine.windows import parse_window, zone
    from bot.messages import plan_message
    from bot.messages.plain import plain

    if args.tz and not args.window:
        raise UserError("--tz only applies to a window: add --window YYYY-MM-DDTHH:MM/DURATION")
    if args.tz:
        zone(args.tz)  # a clear error naming the Area/City form
    window = parse_window(args.window, args.tz or "UTC") if args.window else None
    settings = _settings(env)
    # Read-only: the plan is computed and printed, nothing is stored.
    _, sessions = open_database("sqlite://", migrate=False)
    core = build_core(settings, sessions=sessions, clock=SystemClock(),
                      clients=dma_clients(settings, env))
    plan = core.services.plan(args.target, args.version, args.strategy)
    if args.json:
        document = {**plan_to_json(plan),
                    "window": window.describe() if window else None}
        print(json.dumps(document, indent=2, ensure_ascii=False))
        return 0
    slack = settings.slack
    print(plain(str(plan_message(
        "(not submitted)", plan, window=window.describe() if window else None,
        approvals_required=slack.approvals_required, approvers=slack.approvers,
        approve_reaction=slack.approve_reaction, reject_reaction=slack.reject_reaction,
        requester="cli")["text"])))
    return 0


def cmd_simulate(args: argparse.Namespace, env: Environment) -> int:
    """Serve the config's inventory (or the bundled example) as simulated clusters."""
    from bot.rehearsal import bundled_settings
    from bot.sandbox import build_simulator
    from bot.simulator import serve

    if os.path.exists(env.config_path):
        settings = load_settings(env.config_path)
    else:
        print(f"no {env.config_path}: serving the bundled example's clusters ({NO_CONFIG_HINT})")
        settings = bundled_settings()
    user = env.dma_username or "admin"
    sim = build_simulator(settings, speed=args.speed, faults=args.fault, username=user,
                          password=(env.dma_password.get_secret_value()
                                    if env.dma_password else "admin"), port=args.port)
    with sim:
        for spec in settings.all_clusters():
            print(f"{spec.name}: {sim.url_for(spec.name)}", flush=True)
        print(f"admin: {sim.base_url}/_sim/state, /_sim/requests, /_sim/faults "
              f"(user {user}; see `upgradebot simulate --help`); Ctrl-C stops", flush=True)
        serve(sim)
    return 0


def cmd_db(args: argparse.Namespace, env: Environment) -> int:
    """Apply the database migrations, naming the database (never its password)."""
    from storage.db import describe_url, normalize_url, upgrade_database

    normalize_url(env.database_url)  # an unsupported URL is one clear line, before anything
    where = describe_url(env.database_url)
    print(f"upgrading {where} …", flush=True)
    upgrade_database(env.database_url)
    print(f"{where} is at the newest schema")
    return 0


def _settings(env: Environment) -> Settings:
    return load_settings(env.config_path)


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The first-contact subcommands: init, plan, simulate, check-config, db."""
    from bot.simulator import fault_help

    ini = sub.add_parser("init", help="write a commented starter config (never overwrites)")
    ini.add_argument("path", nargs="?", help="where (default: UPGRADEBOT_CONFIG or "
                                             "upgradebot.yml)")
    pln = sub.add_parser("plan", help="print the plan for the real inventory (read-only)")
    pln.add_argument("target")
    pln.add_argument("version")
    pln.add_argument("--strategy", default="auto",
                     choices=["auto", "basic", "full-outage", "incremental"])
    pln.add_argument("--window", metavar="YYYY-MM-DDTHH:MM/DURATION",
                     help="the maintenance window, local time in --tz (e.g. "
                          "2026-11-28T22:00/4h)")
    pln.add_argument("--tz", metavar="Area/City", help="the window's time zone (default UTC)")
    pln.add_argument("--json", action="store_true", help="print the plan as JSON")
    sim = sub.add_parser("simulate", help="serve simulated clusters of the config for manual "
                                          "tries", description=SIMULATE_HELP + fault_help(),
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    sim.add_argument("--port", type=int, default=8443)
    sim.add_argument("--speed", type=float, default=60.0,
                     help="how many times faster than real time (default 60)")
    sim.add_argument("--fault", action="append", default=[], metavar="CLUSTER=KIND",
                     help="inject a fault at start (kinds above)")
    sub.add_parser("check-config", help="validate the config file and list every problem")
    db = sub.add_parser("db", help="database maintenance")
    db.add_argument("action", choices=["upgrade"], help="apply the migrations (alembic)")
