"""Typed settings: the YAML configuration file and the process environment, read once at start-up.

`load_settings` turns a file into one frozen `Settings` object or raises `ConfigError` listing every
problem (file, key, what is wrong); no pydantic or YAML traceback ever reaches a user.
`Environment.from_env` reads the environment variables; nothing else reads `os.environ`.
"""

from __future__ import annotations

import difflib
import math
import re
import types
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin
from urllib.parse import urlsplit

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    ValidationInfo,
    model_validator,
)
from pydantic_core import PydanticCustomError

from bot.engine.versions import InvalidVersion, parse_version

EXAMPLES_DIR = Path(__file__).parent / "examples"
REHEARSAL_EXAMPLE = EXAMPLES_DIR / "rehearsal.yml"

# --------------------------------------------------------------------------------------- durations

_DURATION_EXPECTED = "expected a duration like 30s, 5m, 1h or a number of seconds"
_NUM = r"(?:\d+(?:\.\d*)?|\.\d+)"
_NUMBER_RE = re.compile(_NUM)
_DURATION_RE = re.compile(rf"(?:(?P<h>{_NUM})\s*h)?\s*(?:(?P<m>{_NUM})\s*m)?\s*"
                          rf"(?:(?P<s>{_NUM})\s*s)?")
_MICROS = {"h": 3_600_000_000, "m": 60_000_000, "s": 1_000_000}


def parse_duration(value: str | int | float) -> timedelta:
    """Parse "30s", "5m", "1h", "1h30m", "0.2s" or a number of seconds into a timedelta."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f"{_DURATION_EXPECTED}, got {_show(value)}")
    if isinstance(value, str):
        text = value.strip().lower()
        match = _DURATION_RE.fullmatch(text)
        if _NUMBER_RE.fullmatch(text):
            micros = Decimal(text) * _MICROS["s"]
        elif match and any(match.groupdict().values()):
            micros = sum((Decimal(n) * _MICROS[unit] for unit, n in match.groupdict().items() if n),
                         Decimal(0))
        else:
            raise ValueError(f"{_DURATION_EXPECTED}, got {_show(value)}")
    else:
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"{_DURATION_EXPECTED}, got {_show(value)}")
        # str() gives the shortest exact spelling of a float, so 0.2 stays 0.2 and not 0.2000...01
        micros = Decimal(str(value)) * _MICROS["s"]
    try:
        return timedelta(microseconds=int(micros.to_integral_value(ROUND_HALF_EVEN)))
    except OverflowError:
        raise ValueError(f"{_DURATION_EXPECTED}, got {_show(value)}, which is too long") from None


def format_duration(value: timedelta) -> str:
    """Spell a timedelta the way the configuration file does: "1h30m", "30s", "0.2s"."""
    micros = value // timedelta(microseconds=1)
    sign, micros = ("-" if micros < 0 else ""), abs(micros)
    hours, micros = divmod(micros, _MICROS["h"])
    minutes, micros = divmod(micros, _MICROS["m"])
    parts = [f"{hours}h"] * bool(hours) + [f"{minutes}m"] * bool(minutes)
    if micros or not parts:
        parts.append(f"{format((Decimal(micros) / _MICROS['s']).normalize(), 'f')}s")
    return sign + "".join(parts)


# ---------------------------------------------------------------------------------------- results


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a configuration: where (a key path) and what."""

    key: str
    message: str

    def __str__(self) -> str:
        """Render as "key: message" (just the message when the whole file is concerned)."""
        return f"{self.key}: {self.message}" if self.key else self.message


class ConfigError(Exception):
    """A configuration that cannot be used, with every problem found in it."""

    def __init__(self, source: str, problems: Sequence[Problem]) -> None:
        self.source = source
        self.problems = tuple(problems)
        super().__init__(self.format())

    def format(self) -> str:
        """Render one line per problem: "source: key: message"."""
        return "\n".join(f"{self.source}: {problem}" for problem in self.problems)


class UnknownTarget(Exception):
    """A name that is neither a supercluster nor a cluster of the inventory."""

    def __init__(self, name: str, nearest: str | None, known: Sequence[str] = ()) -> None:
        self.name = name
        self.nearest = nearest
        self.known = tuple(known)
        super().__init__(str(self))

    def __str__(self) -> str:
        """Say what was asked, the nearest known name, and what is known."""
        if not self.known:
            return (f"no supercluster or cluster named {self.name!r}: the inventory is empty "
                    "(list superclusters or clusters in the configuration file)")
        hint = f"; did you mean {self.nearest!r}?" if self.nearest else "."
        return (f"no supercluster or cluster named {self.name!r} in the inventory{hint} "
                f"Known: {', '.join(self.known)}")


# ----------------------------------------------------------------------------- small value checks

# A local, lenient copy of the DMA version grammar (dma-procedures.md): bot/engine/versions.py is
# written at the same time by someone else, and the config layer must not depend on the engine.
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_PRINCIPAL_RE = re.compile(r"[UWS][A-Z0-9]{2,}")
_CHANNEL_RE = re.compile(r"[CGD][A-Z0-9]{2,}")
_REACTION_RE = re.compile(r"[^\sA-Z:]+")
_SHA1_RE = re.compile(r"[0-9a-fA-F]{40}")


def _pattern(regex: re.Pattern[str], expected: str) -> AfterValidator:
    def check(value: str) -> str:
        if not regex.fullmatch(value):
            raise ValueError(f"expected {expected}, got {_show(value)}")
        return value
    return AfterValidator(check)


def _http_url(example: str) -> AfterValidator:
    def check(value: str) -> str:
        parts = urlsplit(value)
        try:
            port_ok = parts.port is None or parts.port > 0
        except ValueError:
            port_ok = False
        if (parts.scheme not in ("http", "https") or not parts.hostname or not port_ok
                or any(c.isspace() for c in value)):
            raise ValueError(f"expected an http:// or https:// URL with a host, like {example}, "
                             f"got {_show(value)}")
        return value
    return AfterValidator(check)


def _check_ca_bundle(value: str | None, info: ValidationInfo) -> str | None:
    # A relative path is read relative to the configuration file, not to wherever the bot starts.
    if value is None:
        return None
    base = Path((info.context or {}).get("base_dir") or ".")
    path = Path(value).expanduser()
    path = path if path.is_absolute() else (base / path).absolute()
    if not path.is_file():
        raise ValueError(f"CA bundle file not found: {str(path)!r}")
    return str(path)


def _positive(value: timedelta) -> timedelta:
    if value <= timedelta(0):
        raise ValueError(f"expected a duration longer than zero, got {format_duration(value)}")
    return value


def _to_duration(value: object) -> timedelta:
    return value if isinstance(value, timedelta) else parse_duration(value)  # type: ignore[arg-type]


# As JSON a duration is spelt the way the file spells it, so a dumped Settings loads back.
Duration = Annotated[timedelta, BeforeValidator(_to_duration),
                     PlainSerializer(format_duration, return_type=str, when_used="json")]
PositiveDuration = Annotated[Duration, AfterValidator(_positive)]
Name = Annotated[str, _pattern(_NAME_RE, "a name of letters, digits, '.', '_' or '-' "
                                         "(it is typed in /upgrade commands)")]
def _dma_version(value: str) -> str:
    # The engine's parser, so the config accepts exactly the versions a plan can be made for.
    try:
        parse_version(value)
    except InvalidVersion:
        raise ValueError("expected a DMA version like 10.0.0.3, 5.2.2.6 or 6.0.1J, got "
                         f"{_show(value)}") from None
    return value


Version = Annotated[str, AfterValidator(_dma_version)]
SlackPrincipal = Annotated[str, _pattern(_PRINCIPAL_RE, "a Slack user id (U... or W...) or "
                                                        "user-group id (S...)")]
SlackChannel = Annotated[str, _pattern(_CHANNEL_RE, "a Slack channel id (C..., G... or D...)")]
Reaction = Annotated[str, _pattern(_REACTION_RE, "a reaction name in lowercase without colons "
                                                 "or spaces, like white_check_mark")]
CaBundle = Annotated[str, AfterValidator(_check_ca_bundle)]
Port = Annotated[int, Field(ge=1, le=65535)]


def _field_problem(field: str, message: str) -> PydanticCustomError:
    """Build an error that a model-level check attaches to one of the model's fields."""
    return PydanticCustomError("field_problem", "{message}", {"field": field, "message": message})


# ----------------------------------------------------------------------------------------- models


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _empty_means_default(cls, data: Any) -> Any:
        # `timing:` with every key commented out reads as None: treat it as "use the defaults".
        if not isinstance(data, dict):
            return data
        fields = cls.model_fields
        return {k: v for k, v in data.items()
                if not (v is None and k in fields and not fields[k].is_required()
                        and fields[k].default is not None)}


class ClusterSpec(_Model):
    """One DMA cluster: its management API and how many servers it has."""

    name: Name
    api_url: Annotated[str, _http_url("https://dma-dallas.example.com:8443/api/rest")]
    servers: Literal[1, 2] = 2
    verify_tls: bool | None = None
    ca_bundle: CaBundle | None = None
    fqdn: str | None = None
    port: Port | None = None

    @model_validator(mode="before")
    @classmethod
    def _address_from_url(cls, data: Any) -> Any:
        if not isinstance(data, dict) or not isinstance(data.get("api_url"), str):
            return data
        parts = urlsplit(data["api_url"])
        try:
            port = parts.port or {"https": 443, "http": 80}.get(parts.scheme)
        except ValueError:
            port = None  # the api_url check reports it
        filled = dict(data)
        if filled.get("fqdn") is None and parts.hostname:
            filled["fqdn"] = parts.hostname
        if filled.get("port") is None and port is not None:
            filled["port"] = port
        return filled

    @model_validator(mode="after")
    def _bundle_needs_verification(self) -> ClusterSpec:
        if self.verify_tls is False and self.ca_bundle is not None:
            raise _field_problem("ca_bundle", "a CA bundle is only used when verify_tls is true; "
                                              "remove one of the two")
        return self


class SuperclusterSpec(_Model):
    """A supercluster: one to five peer clusters sharing one data store."""

    name: Name
    clusters: list[ClusterSpec]

    @model_validator(mode="after")
    def _size(self) -> SuperclusterSpec:
        if not 1 <= len(self.clusters) <= 5:
            raise _field_problem("clusters", "a supercluster has 1 to 5 clusters (the DMA's "
                                             f"limit), got {len(self.clusters)}")
        return self


class SlackSettings(_Model):
    """Where the bot posts and who may do what."""

    channel: SlackChannel | None = None
    operators: list[SlackPrincipal] = []
    approvers: list[SlackPrincipal] = []
    approvals_required: Annotated[int, Field(ge=1)] = 2
    approve_reaction: Reaction = "white_check_mark"
    reject_reaction: Reaction = "x"

    @model_validator(mode="after")
    def _coherent(self) -> SlackSettings:
        if self.approve_reaction == self.reject_reaction:
            raise _field_problem("reject_reaction", "must differ from approve_reaction, "
                                                    f"both are {self.approve_reaction!r}")
        people = set(self.approvers)
        # With only individual approvers listed, fewer people than the quorum can never approve.
        if people and not any(a.startswith("S") for a in people) \
                and len(people) < self.approvals_required:
            raise _field_problem("approvals_required", f"{self.approvals_required} approvals "
                                 f"are required but only {len(people)} approver(s) are listed")
        return self


class TimingSettings(_Model):
    """Polling, waiting and estimating."""

    poll_interval: PositiveDuration = timedelta(seconds=30)
    login_grace: PositiveDuration = timedelta(minutes=5)
    escalate_after: Annotated[float, Field(gt=1)] = 2.0
    drain_timeout: PositiveDuration = timedelta(minutes=15)
    install_estimate: PositiveDuration = timedelta(minutes=40)
    join_estimate: PositiveDuration = timedelta(minutes=10)
    leave_estimate: PositiveDuration = timedelta(minutes=5)
    upload_timeout: PositiveDuration = timedelta(minutes=30)
    drain_estimate: PositiveDuration = timedelta(minutes=5)
    max_parallel_installs: Annotated[int, Field(ge=1)] = 3
    lease: PositiveDuration = timedelta(minutes=2)
    tick: PositiveDuration = timedelta(seconds=2)

    @model_validator(mode="after")
    def _lease_outlives_tick(self) -> TimingSettings:
        if self.lease <= self.tick:
            raise _field_problem("lease", f"must be longer than tick ({format_duration(self.tick)})"
                                          ", or a live worker loses its claim between two ticks")
        return self


class EscalationSettings(_Model):
    """Whom to call and whom to mention when a cluster fails a vendor check."""

    contact: str = "Polycom Global Services, +1 800 765 9266"
    notify: list[SlackPrincipal] = []


class PackageSpec(_Model):
    """Where to download one DMA upgrade package, and its checksum."""

    url: Annotated[str, _http_url("https://files.example.com/dma/10.1.0.1.bin")]
    sha1: Annotated[str, _pattern(_SHA1_RE, "40 hexadecimal digits"),
                    AfterValidator(str.lower)] | None = None


class DmaSettings(_Model):
    """How the bot talks to every cluster's API (a cluster may override TLS)."""

    verify_tls: bool = True
    ca_bundle: CaBundle | None = None
    timeout: PositiveDuration = timedelta(seconds=10)
    retries: Annotated[int, Field(ge=0)] = 2
    backoff: Duration = timedelta(seconds=0.2)

    @model_validator(mode="after")
    def _backoff_not_negative(self) -> DmaSettings:
        if self.backoff < timedelta(0):
            raise _field_problem("backoff", "expected a duration of zero or more")
        return self


class SimClusterOverride(_Model):
    """Simulator values for one cluster (each falls back to the simulation-wide value)."""

    version: Version | None = None
    estimated_install_minutes: Annotated[float, Field(gt=0)] | None = None
    active_calls: Annotated[int, Field(ge=0)] | None = None


class SimTerritorySpec(_Model):
    """A territory the simulator starts with."""

    id: Name
    name: str
    primary: str
    backup: str | None = None
    conference_room_host: bool = False


class SimulationSettings(_Model):
    """What the simulated clusters look like (`upgradebot rehearse` and `simulate` only)."""

    version: Version = "10.0.0.3"
    estimated_install_minutes: Annotated[float, Field(gt=0)] = 35
    active_calls: Annotated[int, Field(ge=0)] = 2
    clusters: dict[str, SimClusterOverride] = {}
    territories: dict[str, list[SimTerritorySpec]] = {}
    faults: dict[str, list[Annotated[str, Field(min_length=1)]]] = {}


@dataclass(frozen=True)
class Target:
    """What an operator named: a supercluster or one cluster, with the clusters concerned."""

    kind: Literal["supercluster", "cluster"]
    name: str
    clusters: tuple[ClusterSpec, ...]
    supercluster: SuperclusterSpec | None


class Settings(_Model):
    """The whole configuration file."""

    slack: SlackSettings = SlackSettings()
    timing: TimingSettings = TimingSettings()
    escalation: EscalationSettings = EscalationSettings()
    packages: dict[Version, PackageSpec] = {}
    dma: DmaSettings = DmaSettings()
    superclusters: list[SuperclusterSpec] = []
    clusters: list[ClusterSpec] = []
    simulation: SimulationSettings | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        # load_settings runs the same checks on the raw file so they are reported alongside any
        # field problem; this keeps Settings built in code (a rehearsal, a test) just as honest.
        raw = self.model_dump()
        problems = [f"{_render_key(loc, raw)}: {msg}" for loc, msg in _consistency_problems(raw)]
        if problems:
            raise PydanticCustomError("inconsistent_settings", "{summary}",
                                      {"summary": "; ".join(problems)})
        return self

    def all_clusters(self) -> list[ClusterSpec]:
        """Return every cluster: superclustered ones in file order, then stand-alone ones."""
        return [c for sc in self.superclusters for c in sc.clusters] + list(self.clusters)

    def cluster(self, name: str) -> ClusterSpec | None:
        """Return the cluster of that name (case-insensitive), if any."""
        return next((c for c in self.all_clusters() if c.name.casefold() == name.casefold()), None)

    def supercluster(self, name: str) -> SuperclusterSpec | None:
        """Return the supercluster of that name (case-insensitive), if any."""
        folded = name.casefold()
        return next((sc for sc in self.superclusters if sc.name.casefold() == folded), None)

    def supercluster_of(self, cluster: str) -> SuperclusterSpec | None:
        """Return the supercluster a cluster belongs to; None when stand-alone or unknown."""
        folded = cluster.casefold()
        return next((sc for sc in self.superclusters
                     if any(c.name.casefold() == folded for c in sc.clusters)), None)

    def target(self, name: str) -> Target:
        """Resolve a supercluster or cluster name, or raise UnknownTarget."""
        if (sc := self.supercluster(name)) is not None:
            return Target("supercluster", sc.name, tuple(sc.clusters), sc)
        if (cluster := self.cluster(name)) is not None:
            return Target("cluster", cluster.name, (cluster,), self.supercluster_of(cluster.name))
        known = [sc.name for sc in self.superclusters] + [c.name for c in self.clusters]
        raise UnknownTarget(name, self.nearest_name(name), known)

    def names(self) -> list[str]:
        """Return every supercluster and cluster name, in file order."""
        return [n for sc in self.superclusters for n in (sc.name, *(c.name for c in sc.clusters))] \
            + [c.name for c in self.clusters]

    def nearest_name(self, name: str) -> str | None:
        """Return the known name closest to a mistyped one, if any is close."""
        by_folded = {n.casefold(): n for n in self.names()}
        match = difflib.get_close_matches(name.casefold(), list(by_folded), n=1)
        return by_folded[match[0]] if match else None

    def verify_for(self, cluster: ClusterSpec) -> bool | str:
        """Return what to pass as requests' `verify` for a cluster: a CA bundle path or a flag."""
        # A cluster's own CA bundle means "verify with this", whatever dma.verify_tls says.
        if cluster.verify_tls is False:
            return False
        if cluster.ca_bundle is not None:
            return cluster.ca_bundle
        if cluster.verify_tls is None and not self.dma.verify_tls:
            return False
        return self.dma.ca_bundle or True

    def tls_warnings(self) -> list[str]:
        """Return one line per cluster whose connection is not protected by verified TLS."""
        lines = []
        for c in self.all_clusters():
            parts = urlsplit(c.api_url)
            if parts.scheme == "http" and parts.hostname not in ("127.0.0.1", "::1", "localhost"):
                lines.append(f"cluster {c.name!r} is reached over plain http ({c.api_url}): "
                             "TLS is off and the DMA password is sent unencrypted")
            elif parts.scheme == "https" and self.verify_for(c) is False:
                where = "its verify_tls" if c.verify_tls is False else "dma.verify_tls"
                lines.append(f"TLS verification is off for cluster {c.name!r} ({c.api_url}, set "
                             f"by {where}): its certificate is not checked")
        return lines


# -------------------------------------------------------------------------------------- loading


class _Loader(yaml.SafeLoader):
    """A safe YAML loader that refuses a key given twice in one mapping."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        """Build a mapping, raising on a duplicate key (PyYAML would keep the last silently)."""
        seen: dict[Any, yaml.Mark] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)  # type: ignore[no-untyped-call]
            try:
                first = seen.setdefault(key, key_node.start_mark)
            except TypeError:
                continue  # an unhashable key: SafeLoader reports it
            if first is not key_node.start_mark:
                raise yaml.constructor.ConstructorError(
                    None, None, f"found the key {key!r} twice (first at line {first.line + 1})",
                    key_node.start_mark)
        return super().construct_mapping(node, deep)


def load_settings(path: str | Path) -> Settings:
    """Read and check a configuration file; raise ConfigError listing every problem."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(source, [Problem("", "no such file (set UPGRADEBOT_CONFIG to the "
                                               "configuration file's path)")]) from None
    except IsADirectoryError:
        raise ConfigError(source, [Problem("", "is a directory, expected a YAML file")]) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(source, [Problem("", f"cannot read it as UTF-8 text: {exc.reason} "
                                               f"at byte {exc.start}")]) from None
    except OSError as exc:
        raise ConfigError(source, [Problem("", f"cannot read it: {exc.strerror or exc}")]) from None
    return _load(text, source, Path(path).parent)


def load_settings_text(text: str, source: str = "<string>") -> Settings:
    """Check configuration text (relative paths are taken from the current directory)."""
    return _load(text, source, Path("."))


def _load(text: str, source: str, base_dir: Path) -> Settings:
    try:
        data = yaml.load(text, Loader=_Loader)  # a SafeLoader: no arbitrary objects
    except yaml.MarkedYAMLError as exc:
        raise ConfigError(source, [Problem("", _describe_yaml_error(exc))]) from None
    except yaml.YAMLError as exc:
        raise ConfigError(source, [Problem("", f"invalid YAML: {exc}")]) from None
    except RecursionError:
        raise ConfigError(source, [Problem("", "invalid YAML: nested too deeply")]) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(source, [Problem("", "expected a mapping of sections (slack, timing, "
                                               f"superclusters, ...), got {_show(data)}")])
    settings, errors = None, None
    try:
        settings = Settings.model_validate(data, context={"base_dir": base_dir})
    except ValidationError as exc:
        errors = exc
    problems = [] if errors is None else _translate(errors, data, skip_consistency=True)
    problems += [Problem(_render_key(loc, data), msg) for loc, msg in _consistency_problems(data)]
    if errors is not None and not problems:
        problems = _translate(errors, data, skip_consistency=False)
    if problems:
        raise ConfigError(source, list(dict.fromkeys(problems)))
    assert settings is not None
    return settings


def _describe_yaml_error(exc: yaml.MarkedYAMLError) -> str:
    mark = exc.problem_mark or exc.context_mark
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    message = f"invalid YAML{where}: {exc.problem or exc.context}"
    if exc.context and exc.problem and exc.context_mark:
        message += (f" ({exc.context} at line {exc.context_mark.line + 1}, "
                    f"column {exc.context_mark.column + 1})")
    return message


# ------------------------------------------------------------------------ pydantic error messages

Loc = tuple[str | int, ...]


def _translate(exc: ValidationError, raw: Any, *, skip_consistency: bool) -> list[Problem]:
    problems = []
    for err in exc.errors(include_url=False):
        if skip_consistency and err["type"] == "inconsistent_settings":
            continue
        loc: Loc = tuple(err["loc"])
        if err["type"] == "field_problem":
            loc += (err["ctx"]["field"],)
        problems.append(Problem(_render_key(loc, raw), _message(err, loc, raw)))
    return problems


def _message(err: Any, loc: Loc, raw: Any) -> str:
    kind, got = err["type"], _show(err.get("input"))
    # Field(gt=1) on a float reports its bound as 1.0; a user wrote 1.
    ctx = {k: int(v) if isinstance(v, float) and v.is_integer() else v
           for k, v in (err.get("ctx") or {}).items()}
    simple = {
        "missing": "missing; this key is required",
        "int_type": f"expected a whole number, got {got}",
        "int_parsing": f"expected a whole number, got {got}",
        "int_from_float": f"expected a whole number, got {got}",
        "float_type": f"expected a number, got {got}",
        "float_parsing": f"expected a number, got {got}",
        "finite_number": f"expected a finite number, got {got}",
        "bool_type": f"expected true or false, got {got}",
        "bool_parsing": f"expected true or false, got {got}",
        "string_type": f"expected text, got {got} (quote it in YAML: \"...\")",
        "list_type": f"expected a list, got {got}",
        "dict_type": f"expected a mapping (key: value), got {got}",
        "literal_error": f"expected {ctx.get('expected')}, got {got}",
        "greater_than": f"expected a number greater than {ctx.get('gt')}, got {got}",
        "greater_than_equal": f"expected a number of at least {ctx.get('ge')}, got {got}",
        "less_than_equal": f"expected a number of at most {ctx.get('le')}, got {got}",
        "too_short": f"expected at least {ctx.get('min_length')} item(s)",
        "string_too_short": "expected some text, got an empty string",
        "field_problem": str(ctx.get("message")),
        "value_error": str(ctx.get("error")),
    }
    if kind in simple:
        return simple[kind]
    if kind in ("model_type", "model_attributes_type"):
        fields = _fields_at(loc, raw)
        keys = f" with keys {', '.join(fields)}" if fields else ""
        return f"expected a mapping{keys}, got {got}"
    if kind == "extra_forbidden":
        fields = _fields_at(loc[:-1], raw)
        key = str(loc[-1])
        close = difflib.get_close_matches(key, fields, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return f"unknown key {key!r}{hint}; expected one of: {', '.join(fields)}"
    return str(err["msg"])


def _show(value: object) -> str:
    """Render a user's value briefly for a message."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _unwrap(tp: Any) -> Any:
    """Strip Annotated and Optional from a type, leaving what a value is checked against."""
    while True:
        origin = get_origin(tp)
        if origin is Annotated:
            tp = get_args(tp)[0]
        elif origin in (Union, types.UnionType):
            inner = [a for a in get_args(tp) if a is not type(None)]
            if len(inner) != 1:
                return tp
            tp = inner[0]
        else:
            return tp


def _walk(loc: Loc, raw: Any) -> tuple[str, Any]:
    """Render a pydantic location as a key path, and return the type found at its end."""
    text, node = "", raw
    tp: Any = Settings
    for part in loc:
        if part == "[key]":
            break
        tp = _unwrap(tp)
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            text += f".{part}" if text else str(part)
            field = tp.model_fields.get(part) if isinstance(part, str) else None
            tp = field.annotation if field else None
        elif get_origin(tp) is list and isinstance(part, int):
            text += f"[{_label(node, part)}]"
            tp = get_args(tp)[0]
        elif get_origin(tp) is dict:
            text += f"[{part}]"
            tp = get_args(tp)[1]
        else:
            text += f"[{part}]" if isinstance(part, int) else f".{part}"
            tp = None
        node = _child(node, part)
    return text, _unwrap(tp)


def _render_key(loc: Loc, raw: Any) -> str:
    return _walk(loc, raw)[0]


def _fields_at(loc: Loc, raw: Any) -> list[str]:
    tp = _walk(loc, raw)[1]
    return list(tp.model_fields) if isinstance(tp, type) and issubclass(tp, BaseModel) else []


def _child(node: Any, part: str | int) -> Any:
    if isinstance(node, dict):
        return node.get(part)
    if isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
        return node[part]
    return None


def _label(items: Any, index: int) -> str:
    """Name a list item by its name (or id) when that is unambiguous, else by its index."""
    item = _child(items, index)
    field = "id" if isinstance(item, dict) and "id" in item else "name"
    label = item.get(field) if isinstance(item, dict) else None
    if not isinstance(label, str) or not _NAME_RE.fullmatch(label):
        return str(index)
    same = [i for i in items if isinstance(i, dict) and str(i.get(field)).casefold()
            == label.casefold()]
    return label if len(same) == 1 else str(index)


# ---------------------------------------------------------------------------- consistency checks


@dataclass(frozen=True)
class _Entry:
    loc: Loc
    name: str
    kind: str  # "supercluster" or "cluster"
    parent: str | None  # the supercluster of a superclustered cluster
    parent_index: int | None


def _dicts(node: Any) -> list[tuple[int, dict[Any, Any]]]:
    return [(i, x) for i, x in enumerate(node) if isinstance(x, dict)] \
        if isinstance(node, list) else []


def _str_name(item: dict[Any, Any]) -> str | None:
    name = item.get("name")
    return name if isinstance(name, str) else None


def _entries(raw: Mapping[str, Any]) -> list[_Entry]:
    entries = []
    for i, sc in _dicts(raw.get("superclusters")):
        sc_name = _str_name(sc)
        if sc_name is not None:
            entries.append(_Entry(("superclusters", i, "name"), sc_name, "supercluster",
                                  None, None))
        for j, c in _dicts(sc.get("clusters")):
            if (name := _str_name(c)) is not None:
                entries.append(_Entry(("superclusters", i, "clusters", j, "name"), name,
                                      "cluster", sc_name or f"#{i}", i))
    for j, c in _dicts(raw.get("clusters")):
        if (name := _str_name(c)) is not None:
            entries.append(_Entry(("clusters", j, "name"), name, "cluster", None, None))
    return entries


def _consistency_problems(raw: Mapping[str, Any]) -> list[tuple[Loc, str]]:
    """Check what spans sections: unique names, and simulation entries naming real clusters."""
    entries = _entries(raw)
    return _duplicate_names(entries, raw) + _simulation_problems(raw, entries)


def _duplicate_names(entries: list[_Entry], raw: Mapping[str, Any]) -> list[tuple[Loc, str]]:
    problems: list[tuple[Loc, str]] = []
    seen: dict[str, _Entry] = {}
    for e in entries:
        first = seen.setdefault(e.name.casefold(), e)
        if first is e:
            continue
        if e.kind == first.kind == "cluster" and first.parent is not None:
            if e.parent_index == first.parent_index:
                msg = f"cluster {e.name!r} is listed twice in supercluster {e.parent!r}"
            elif e.parent is not None:
                msg = (f"cluster {e.name!r} is already in supercluster {first.parent!r}; "
                       "a cluster belongs to at most one supercluster")
            else:
                msg = (f"cluster {e.name!r} is already in supercluster {first.parent!r}; "
                       "list it there or under the stand-alone clusters, not both")
        else:
            msg = (f"the name {e.name!r} is already used by the {first.kind} at "
                   f"{_render_key(first.loc[:-1], raw)}; every supercluster and cluster needs "
                   "its own name")
        problems.append((e.loc, msg))
    return problems


def _unknown(what: str, name: str, known: Sequence[str]) -> str:
    known = list(dict.fromkeys(known))
    close = difflib.get_close_matches(name, list(known), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    listed = f" Known: {', '.join(known)}" if known else f" The inventory has no {what}s."
    return f"unknown {what} {name!r}{hint}{'' if close else '.'}{listed}"


def _simulation_problems(raw: Mapping[str, Any], entries: list[_Entry]) -> list[tuple[Loc, str]]:
    sim = raw.get("simulation")
    if not isinstance(sim, dict):
        return []
    clusters = [e.name for e in entries if e.kind == "cluster"]
    problems: list[tuple[Loc, str]] = []
    # Exact names here: the simulator looks these up by the inventory's spelling.
    for section in ("clusters", "faults"):
        if isinstance(sim.get(section), dict):
            problems += [(("simulation", section, key), _unknown("cluster", str(key), clusters))
                         for key in sim[section] if key not in clusters]
    superclusters = {e.name: e for e in entries if e.kind == "supercluster"}
    territories = sim.get("territories")
    for sc_name, items in (territories.items() if isinstance(territories, dict) else ()):
        loc: Loc = ("simulation", "territories", sc_name)
        if sc_name not in superclusters:
            problems.append((loc, _unknown("supercluster", str(sc_name), list(superclusters))))
            continue
        members = [e.name for e in entries if e.kind == "cluster"
                   and e.parent_index == superclusters[sc_name].loc[1]]
        problems += _territory_problems(loc, sc_name, members, items)
    return problems


def _territory_problems(loc: Loc, sc_name: str, members: list[str],
                        items: Any) -> list[tuple[Loc, str]]:
    problems: list[tuple[Loc, str]] = []
    ids: set[str] = set()
    hosts: list[str] = []
    for k, t in _dicts(items):
        for role in ("primary", "backup"):
            value = t.get(role)
            if isinstance(value, str) and value not in members:
                problems.append(((*loc, k, role), f"{value!r} is not a cluster of supercluster "
                                 f"{sc_name!r} (its clusters: {', '.join(members)})"))
        if t.get("backup") is not None and t.get("backup") == t.get("primary"):
            problems.append(((*loc, k, "backup"), "the backup must be another cluster than the "
                                                  "primary"))
        if isinstance(t.get("id"), str) and t["id"] in ids:
            problems.append(((*loc, k, "id"), f"territory id {t['id']!r} is used twice"))
        ids.add(str(t.get("id")))
        if t.get("conference_room_host") is True and isinstance(t.get("primary"), str) \
                and t["primary"] not in hosts:
            hosts.append(t["primary"])
    if len(hosts) > 3:
        problems.append((loc, "at most 3 clusters of a supercluster host conference rooms, got "
                              f"{len(hosts)}: {', '.join(hosts)}"))
    return problems


# ----------------------------------------------------------------------------------- environment

_SECRET = "***"
_ENV_NAMES = {
    "slack_bot_token": "SLACK_BOT_TOKEN",
    "slack_signing_secret": "SLACK_SIGNING_SECRET",
    "slack_app_token": "SLACK_APP_TOKEN",
    "slack_api_url": "SLACK_API_URL",
    "database_url": "DATABASE_URL",
    "config_path": "UPGRADEBOT_CONFIG",
    "dma_username": "DMA_USERNAME",
    "dma_password": "DMA_PASSWORD",
}
_SECRETS = frozenset({"slack_bot_token", "slack_signing_secret", "slack_app_token", "dma_password"})
_URL_PASSWORD_RE = re.compile(r"(://[^/:@]*:)[^/]*(@)")


@dataclass(frozen=True, repr=False)
class Environment:
    """What the process environment says, read once at the entry point."""

    slack_bot_token: str | None = None
    slack_signing_secret: str | None = None
    slack_app_token: str | None = None
    slack_api_url: str = "https://slack.com/api/"
    database_url: str = "sqlite:///upgradebot.db"
    config_path: str = "upgradebot.yml"
    dma_username: str | None = None
    dma_password: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Environment:
        """Read the variables; an empty or blank variable counts as unset."""
        values = {field: environ.get(var, "").strip() for field, var in _ENV_NAMES.items()}
        return cls(**{field: value for field, value in values.items() if value})

    @property
    def socket_mode(self) -> bool:
        """Say whether to connect by Socket Mode (an app-level token is set)."""
        return self.slack_app_token is not None

    def __repr__(self) -> str:
        """Show the settings with tokens, passwords and a database password masked."""
        shown = []
        for field in _ENV_NAMES:
            value = getattr(self, field)
            if value is not None and field in _SECRETS:
                value = _SECRET
            elif field == "database_url":
                value = _URL_PASSWORD_RE.sub(rf"\g<1>{_SECRET}\g<2>", value)
            shown.append(f"{field}={value!r}")
        return f"Environment({', '.join(shown)})"
