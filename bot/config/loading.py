"""Reading a configuration file: YAML in, one frozen `Settings` out, or every problem at once.

`load_settings` raises `ConfigError` listing every problem (file, key, what is wrong); no pydantic
or YAML traceback ever reaches a user.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from bot.config.consistency import consistency_problems
from bot.config.fields import show_value
from bot.config.problems import ConfigError, Problem, translate
from bot.config.schema import Settings

EXAMPLES_DIR = Path(__file__).parents[1] / "examples"
REHEARSAL_EXAMPLE = EXAMPLES_DIR / "rehearsal.yml"
STARTER_EXAMPLE = EXAMPLES_DIR / "upgradebot.example.yml"
# What every "no configuration file" message says: how to get one.
NO_CONFIG_HINT = ("write a commented starter one with `upgradebot init`, or copy the bundled "
                  f"example {STARTER_EXAMPLE}; UPGRADEBOT_CONFIG names another path")


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
        raise ConfigError(source, [Problem("", f"no such file: {NO_CONFIG_HINT}")]) from None
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
    data = _parse_yaml(text, source)
    settings, errors = None, None
    try:
        settings = Settings.model_validate(data, context={"base_dir": base_dir})
    except ValidationError as exc:
        errors = exc
    # The cross-section checks run on the raw mapping so they are listed with the field problems;
    # only when nothing else is found does Settings' own summary of them stand.
    problems = [] if errors is None else translate(errors, data, Settings, skip_consistency=True)
    problems += consistency_problems(data, Settings)
    if errors is not None and not problems:
        problems = translate(errors, data, Settings, skip_consistency=False)
    if problems:
        raise ConfigError(source, list(dict.fromkeys(problems)))
    assert settings is not None
    return settings


def _parse_yaml(text: str, source: str) -> dict[Any, Any]:
    try:
        data = yaml.load(text, Loader=_Loader)  # a SafeLoader: no arbitrary objects
    except yaml.MarkedYAMLError as exc:
        raise ConfigError(source, [Problem("", _describe_yaml_error(exc))]) from None
    except yaml.YAMLError as exc:
        raise ConfigError(source, [Problem("", f"invalid YAML: {exc}")]) from None
    except RecursionError:
        raise ConfigError(source, [Problem("", "invalid YAML: nested too deeply")]) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(source, [Problem("", "expected a mapping of sections (slack, timing, "
                                               f"superclusters, ...), got {show_value(data)}")])
    return data


def _describe_yaml_error(exc: yaml.MarkedYAMLError) -> str:
    mark = exc.problem_mark or exc.context_mark
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    message = f"invalid YAML{where}: {exc.problem or exc.context}"
    if exc.context and exc.problem and exc.context_mark:
        message += (f" ({exc.context} at line {exc.context_mark.line + 1}, "
                    f"column {exc.context_mark.column + 1})")
    return message
