"""Typed settings: the YAML configuration file and the process environment, read once at start-up.

`load_settings` turns a file into one frozen `Settings` object or raises `ConfigError` listing every
problem (file, key, what is wrong). `Environment.from_env` reads the environment variables.

fields: the value types · schema: the sections and `Settings` · problems: errors key by key ·
consistency: checks across sections · loading: YAML in, `Settings` out · environment: variables.
"""

from bot.config.environment import Environment
from bot.config.loading import (
    EXAMPLES_DIR,
    NO_CONFIG_HINT,
    REHEARSAL_EXAMPLE,
    STARTER_EXAMPLE,
    load_settings,
    load_settings_text,
)
from bot.config.problems import ConfigError, Problem, UnknownTarget
from bot.config.schema import (
    ChecklistSettings,
    ClusterSpec,
    DmaSettings,
    EscalationSettings,
    PackageSpec,
    Settings,
    SimClusterOverride,
    SimTerritorySpec,
    SimulationSettings,
    SlackSettings,
    SuperclusterSpec,
    Target,
    TimingSettings,
)
from bot.engine.durations import parse_duration
from bot.engine.durations import spell_duration as format_duration  # its name before the move

__all__ = [
    "EXAMPLES_DIR",
    "NO_CONFIG_HINT",
    "REHEARSAL_EXAMPLE",
    "STARTER_EXAMPLE",
    "ChecklistSettings",
    "ClusterSpec",
    "ConfigError",
    "DmaSettings",
    "Environment",
    "EscalationSettings",
    "PackageSpec",
    "Problem",
    "Settings",
    "SimClusterOverride",
    "SimTerritorySpec",
    "SimulationSettings",
    "SlackSettings",
    "SuperclusterSpec",
    "Target",
    "TimingSettings",
    "UnknownTarget",
    "format_duration",
    "load_settings",
    "load_settings_text",
    "parse_duration",
]
