"""What is wrong with a configuration, key by key: pydantic's errors rendered for an operator.

A pydantic location such as ("superclusters", 0, "clusters", 1, "servers") becomes the key path
"superclusters[global].clusters[denver].servers", and each error type a sentence that says what
was expected and what was found. No pydantic wording or traceback reaches a user.
"""

from __future__ import annotations

import difflib
import types
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic_core import PydanticCustomError

from bot.config.fields import NAME_RE, show_value
from bot.engine.errors import UserError

Loc = tuple[str | int, ...]

# Error types of our own: a model-level check blaming one field, and the cross-section summary.
FIELD_PROBLEM = "field_problem"
INCONSISTENT = "inconsistent_settings"


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a configuration: where (a key path) and what."""

    key: str
    message: str

    def __str__(self) -> str:
        """Render as "key: message" (just the message when the whole file is concerned)."""
        return f"{self.key}: {self.message}" if self.key else self.message


class ConfigError(UserError):
    """A configuration that cannot be used, with every problem found in it."""

    def __init__(self, source: str, problems: Sequence[Problem]) -> None:
        self.source = source
        self.problems = tuple(problems)
        super().__init__(self.format())

    def format(self) -> str:
        """Render one line per problem: "source: key: message"."""
        return "\n".join(f"{self.source}: {problem}" for problem in self.problems)


class UnknownTarget(UserError):
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


def field_problem(field: str, message: str) -> PydanticCustomError:
    """Build an error that a model-level check attaches to one of the model's fields."""
    return PydanticCustomError(FIELD_PROBLEM, "{message}", {"field": field, "message": message})


def inconsistent(problems: Sequence[Problem]) -> PydanticCustomError:
    """Build the error of a whole Settings whose sections disagree (reported key by key)."""
    return PydanticCustomError(INCONSISTENT, "{summary}",
                               {"summary": "; ".join(str(p) for p in problems)})


def translate(exc: ValidationError, raw: Any, root: type[BaseModel], *,
              skip_consistency: bool) -> list[Problem]:
    """Turn pydantic's errors about `raw` (validated as `root`) into problems, key by key."""
    problems = []
    for err in exc.errors(include_url=False):
        if skip_consistency and err["type"] == INCONSISTENT:
            continue
        loc: Loc = tuple(err["loc"])
        if err["type"] == FIELD_PROBLEM:
            loc += (err["ctx"]["field"],)
        problems.append(Problem(render_key(loc, raw, root), _message(err, loc, raw, root)))
    return problems


def render_key(loc: Loc, raw: Any, root: type[BaseModel]) -> str:
    """Render a pydantic location in `raw` as a key path, naming list items by their names."""
    return _walk(loc, raw, root)[0]


def _message(err: Any, loc: Loc, raw: Any, root: type[BaseModel]) -> str:
    kind, got = err["type"], show_value(err.get("input"))
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
        FIELD_PROBLEM: str(ctx.get("message")),
        "value_error": str(ctx.get("error")),
    }
    if kind in simple:
        return simple[kind]
    if kind in ("model_type", "model_attributes_type"):
        fields = _fields_at(loc, raw, root)
        keys = f" with keys {', '.join(fields)}" if fields else ""
        return f"expected a mapping{keys}, got {got}"
    if kind == "extra_forbidden":
        fields = _fields_at(loc[:-1], raw, root)
        key = str(loc[-1])
        close = difflib.get_close_matches(key, fields, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return f"unknown key {key!r}{hint}; expected one of: {', '.join(fields)}"
    return str(err["msg"])


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


def _walk(loc: Loc, raw: Any, root: type[BaseModel]) -> tuple[str, Any]:
    """Render a pydantic location as a key path, and return the type found at its end."""
    text, node = "", raw
    tp: Any = root
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


def _fields_at(loc: Loc, raw: Any, root: type[BaseModel]) -> list[str]:
    tp = _walk(loc, raw, root)[1]
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
    if not isinstance(label, str) or not NAME_RE.fullmatch(label):
        return str(index)
    same = [i for i in items if isinstance(i, dict) and str(i.get(field)).casefold()
            == label.casefold()]
    return label if len(same) == 1 else str(index)
