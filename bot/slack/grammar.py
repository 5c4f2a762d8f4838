"""The `/upgrade` grammar of DESIGN.md, parsed into typed requests (pure: no I/O, no settings).

```
help | inventory | plan TARGET VERSION [strategy=…] [window=YYYY-MM-DDTHH:MM/DURATION]
[tz=Area/City] | status [RUN] | pause RUN | resume RUN | abort RUN | retry RUN | history [TARGET]
| rollback RUN CLUSTER | restore RUN | audit RUN | verify TARGET | evidence RUN
```
Anything else raises `UsageError`, whose message says what was expected. Names are checked
against the inventory later (by the service, which knows the nearest known name).
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Literal

from bot.engine.errors import UserError
from bot.engine.plans import PLANNABLE, Strategy
from bot.engine.versions import parse_version
from bot.engine.windows import Window, parse_window, zone

USAGE = {
    "help": "/upgrade help",
    "inventory": "/upgrade inventory",
    "plan": "/upgrade plan TARGET VERSION [strategy=auto|basic|full-outage|incremental] "
            "[window=YYYY-MM-DDTHH:MM/DURATION] [tz=Area/City] [emergency]",
    "status": "/upgrade status [RUN]",
    "pause": "/upgrade pause RUN",
    "resume": "/upgrade resume RUN",
    "abort": "/upgrade abort RUN",
    "retry": "/upgrade retry RUN [reinstall]",
    "history": "/upgrade history [TARGET]",
    "rollback": "/upgrade rollback RUN CLUSTER",
    "restore": "/upgrade restore RUN",
    "audit": "/upgrade audit RUN",
    "verify": "/upgrade verify TARGET",
    "evidence": "/upgrade evidence RUN",
    "stage": "/upgrade stage TARGET VERSION",
}
CONTROLS = ("pause", "resume", "abort", "retry")
# Subcommands that change state: only operators may use them.
MUTATING = frozenset({"plan", "rollback", "restore", "stage", *CONTROLS})
PLAN_OPTIONS = ("strategy", "window", "tz")
_RUN = re.compile(r"[Rr]?([1-9][0-9]*)")

ControlAction = Literal["pause", "resume", "abort", "retry", "reinstall"]


class UsageError(UserError, ValueError):
    """A command that does not follow the grammar; the message says what was expected."""


@dataclass(frozen=True)
class HelpRequest:
    """/upgrade help."""


@dataclass(frozen=True)
class InventoryRequest:
    """/upgrade inventory."""


@dataclass(frozen=True)
class PlanRequest:
    """/upgrade plan TARGET VERSION [strategy=] [window=] [tz=]."""

    target: str
    version: str
    strategy: Strategy = Strategy.AUTO
    window: Window | None = None
    emergency: bool = False  # install even with calls up (the guide: only in an emergency)


@dataclass(frozen=True)
class StatusRequest:
    """/upgrade status [RUN]."""

    run: str | None = None


@dataclass(frozen=True)
class ControlRequest:
    """/upgrade pause|resume|abort|retry RUN."""

    action: ControlAction
    run: str


@dataclass(frozen=True)
class AuditRequest:
    """/upgrade audit RUN."""

    run: str


@dataclass(frozen=True)
class VerifyRequest:
    """/upgrade verify TARGET: the final checks now, read-only."""

    target: str


@dataclass(frozen=True)
class EvidenceRequest:
    """/upgrade evidence RUN: the evidence bundle uploaded to the run's thread."""

    run: str


@dataclass(frozen=True)
class HistoryRequest:
    """/upgrade history [TARGET]."""

    target: str | None = None


@dataclass(frozen=True)
class RollbackRequest:
    """/upgrade rollback RUN CLUSTER."""

    run: str
    cluster: str


@dataclass(frozen=True)
class RestoreRequest:
    """/upgrade restore RUN."""

    run: str


@dataclass(frozen=True)
class StageRequest:
    """/upgrade stage TARGET VERSION."""

    target: str
    version: str


Request = (HelpRequest | InventoryRequest | PlanRequest | StatusRequest | ControlRequest
           | HistoryRequest | RollbackRequest | RestoreRequest | AuditRequest | VerifyRequest
           | EvidenceRequest | StageRequest)


def subcommand(text: str) -> str:
    """The first word of a command's text, lowercased ("" when there is none)."""
    words = text.split()
    return words[0].lower() if words else ""


def parse(text: str) -> Request:
    """Parse the text after `/upgrade` into a request, or raise UsageError."""
    words = text.replace("\u00a0", " ").split()
    if not words:
        return HelpRequest()
    verb, args = words[0].lower(), words[1:]
    if verb == "plan":
        return _plan(args)
    if verb == "retry" and len(args) == 2 and args[1].lower() == "reinstall":
        # After a manual rollback: upgrade that cluster again instead of verifying it again.
        return ControlRequest("reinstall", _run(verb, args[0]))
    if verb in CONTROLS:
        return ControlRequest(verb, _run(verb, _one(verb, args, required=True)))  # type: ignore[arg-type]
    if verb == "status":
        run = _one(verb, args, required=False)
        return StatusRequest(_run(verb, run) if run else None)
    if verb == "rollback":
        if len(args) != 2:
            raise UsageError(f"`rollback` expects a RUN and a CLUSTER (got "
                             f"`{' '.join(args) or 'nothing'}`): `{USAGE['rollback']}`")
        return RollbackRequest(_run(verb, args[0]), args[1])
    if verb == "restore":
        return RestoreRequest(_run(verb, _one(verb, args, required=True)))
    if verb == "stage":
        if len(args) != 2 or any("=" in a for a in args):
            raise UsageError(f"`stage` expects a TARGET and a VERSION (got "
                             f"`{' '.join(args) or 'nothing'}`): `{USAGE['stage']}`")
        _version(args[1])
        return StageRequest(args[0], args[1])
    if verb == "history":
        return HistoryRequest(_one(verb, args, required=False))
    if verb == "audit":
        return AuditRequest(_run(verb, _one(verb, args, required=True)))
    if verb == "verify":
        return VerifyRequest(str(_one(verb, args, required=True)))
    if verb == "evidence":
        return EvidenceRequest(_run(verb, _one(verb, args, required=True)))
    if verb in ("help", "inventory"):
        if args:
            raise UsageError(f"`{verb}` takes nothing more (got `{' '.join(args)}`): "
                             f"`{USAGE[verb]}`")
        return HelpRequest() if verb == "help" else InventoryRequest()
    close = difflib.get_close_matches(verb, list(USAGE), n=1)
    hint = f" Did you mean `{close[0]}`?" if close else ""
    raise UsageError(f"unknown subcommand `{verb}`.{hint} Expected one of: "
                     f"{', '.join(USAGE)} (`/upgrade help` shows them all).")


def _one(verb: str, args: list[str], *, required: bool) -> str | None:
    if len(args) > 1 or (required and not args):
        got = f"got `{' '.join(args)}`" if args else "got nothing"
        raise UsageError(f"`{verb}` expects {'one' if required else 'at most one'} "
                         f"{'TARGET' if verb in ('history', 'verify') else 'RUN'} ({got}): "
                         f"`{USAGE[verb]}`")
    return args[0] if args else None


def _run(verb: str, word: str | None) -> str:
    match = _RUN.fullmatch(word or "")
    if match is None:
        raise UsageError(f"`{word}` is not a run: runs are named R1, R2, … "
                         f"(`/upgrade history` lists them): `{USAGE[verb]}`")
    return f"R{match.group(1)}"


def _plan(args: list[str]) -> PlanRequest:
    emergency = any(a.lower() == "emergency" for a in args)
    args = [a for a in args if a.lower() != "emergency"]
    positional = [a for a in args if "=" not in a]
    options: dict[str, str] = {}
    for arg in (a for a in args if "=" in a):
        key, _, value = arg.partition("=")
        key = key.lower()
        if key not in PLAN_OPTIONS:
            close = difflib.get_close_matches(key, PLAN_OPTIONS, n=1)
            hint = f" (did you mean `{close[0]}=`?)" if close else ""
            raise UsageError(f"unknown option `{key}=`{hint}; expected "
                             f"{', '.join(o + '=' for o in PLAN_OPTIONS)}: `{USAGE['plan']}`")
        if key in options:
            raise UsageError(f"`{key}=` is given twice: `{USAGE['plan']}`")
        options[key] = value
    if len(positional) != 2:
        raise UsageError(f"`plan` expects a TARGET and a VERSION (got "
                         f"`{' '.join(positional) or 'nothing'}`): `{USAGE['plan']}`")
    target, version = positional
    _version(version)
    return PlanRequest(target=target, version=version, strategy=_strategy(options),
                       window=_window(options), emergency=emergency)


def _version(text: str) -> None:
    try:
        parse_version(text)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _strategy(options: dict[str, str]) -> Strategy:
    value = options.get("strategy", "auto").lower()
    try:
        strategy = Strategy(value)
        if strategy not in PLANNABLE:
            raise ValueError(value)
        return strategy
    except ValueError:
        raise UsageError(f"unknown strategy `{value}`; expected one of: "
                         + ", ".join(s.value for s in PLANNABLE)) from None


def _window(options: dict[str, str]) -> Window | None:
    tz = options.get("tz")
    if "window" not in options:
        if tz is not None:
            raise UsageError("`tz=` only applies to a window: add "
                             "`window=YYYY-MM-DDTHH:MM/DURATION`")
        return None
    if tz is not None:
        zone(tz)  # WindowError names the expected Area/City form
    return parse_window(options["window"], tz or "UTC")
