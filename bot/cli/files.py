"""`upgradebot timeline RUN -o FILE.png` and `upgradebot evidence RUN -o FILE.zip`.

Both read the stored run from DATABASE_URL and touch no cluster: the configuration is only
needed for timing values, so the bundled example stands in when there is no config file.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from bot.config import Environment, Settings, load_settings
from bot.engine.errors import UserError
from bot.services import Services


class NoClusters(UserError):
    """Files are rendered from the database only; a cluster read is a bug."""


def _no_clients(cluster: str) -> object:
    raise NoClusters(f"reading {cluster} is not needed to render a run's files")


def stored_services(env: Environment) -> Services:
    """Services over the database at DATABASE_URL, with no DMA access."""
    from bot.app.core import open_database
    from bot.clock import SystemClock
    from bot.rehearsal import bundled_settings

    settings: Settings = (load_settings(env.config_path) if os.path.exists(env.config_path)
                          else bundled_settings())
    _, sessions = open_database(env.database_url, migrate=False)
    return Services(settings=settings, sessions=sessions, clock=SystemClock(),
                    clients=_no_clients)  # type: ignore[arg-type]


def write_file(path: str, data: bytes) -> str:
    """Write the bytes; a folder that does not exist is an error that names it."""
    target = Path(path)
    if not target.parent.is_dir():
        raise UserError(f"cannot write {path}: the folder {target.parent} does not exist")
    target.write_bytes(data)
    return f"{path} ({len(data) // 1024 or 1} KiB)"


def cmd_timeline(args: argparse.Namespace, env: Environment) -> int:
    """Write a run's timeline picture."""
    name, png = stored_services(env).timeline(args.run)
    print(f"{name}: timeline written to {write_file(args.output or f'{name}.png', png)}")
    return 0


def cmd_evidence(args: argparse.Namespace, env: Environment) -> int:
    """Write a run's evidence bundle."""
    name, data = stored_services(env).evidence(args.run)
    print(f"{name}: evidence written to {write_file(args.output or f'{name}-evidence.zip', data)}")
    return 0


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The `timeline` and `evidence` subcommands."""
    tim = sub.add_parser("timeline", help="write a run's timeline picture (PNG) from the database")
    tim.add_argument("run", help="the run, e.g. R12")
    tim.add_argument("-o", "--output", help="the PNG file to write (default RUN.png)")
    evi = sub.add_parser("evidence", help="write a run's evidence bundle (zip) for the vendor")
    evi.add_argument("run", help="the run, e.g. R12")
    evi.add_argument("-o", "--output", help="the zip file to write (default RUN-evidence.zip)")
