"""Loading a configuration file: the bundled examples, empty files, YAML trouble, unreadable
files, and inputs that must only ever end in a ConfigError."""

from __future__ import annotations

from datetime import timedelta

import pytest
import yaml
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from bot.config import (
    EXAMPLES_DIR,
    REHEARSAL_EXAMPLE,
    ConfigError,
    Settings,
    UnknownTarget,
    load_settings,
    load_settings_text,
)
from tests.config.helpers import problems_of


def test_every_bundled_example_loads():
    examples = sorted(EXAMPLES_DIR.glob("*.yml"))
    assert {p.name for p in examples} >= {"rehearsal.yml", "upgradebot.example.yml"}
    for path in examples:
        assert isinstance(load_settings(path), Settings), path


def test_rehearsal_is_a_three_cluster_supercluster_one_minor_version_behind():
    settings = load_settings(REHEARSAL_EXAMPLE)
    target = settings.target("global")
    assert [c.name for c in target.clusters] == ["dallas", "denver", "austin"]
    assert all(c.servers == 2 for c in target.clusters)
    assert list(settings.packages) == ["10.1.0.1"]
    sim = settings.simulation
    assert sim is not None and sim.version == "10.0.0.3"
    assert {n: o.estimated_install_minutes for n, o in sim.clusters.items()} == \
        {"dallas": 35, "denver": 30, "austin": 40}
    territories = {t.id: (t.primary, t.backup, t.conference_room_host)
                   for t in sim.territories["global"]}
    assert territories == {"t-americas": ("dallas", "denver", True),
                           "t-west": ("denver", "austin", False),
                           "t-south": ("austin", "dallas", False)}
    assert settings.timing.poll_interval == timedelta(seconds=30)


def test_a_dumped_configuration_loads_back_unchanged():
    settings = load_settings(EXAMPLES_DIR / "upgradebot.example.yml")
    text = yaml.safe_dump(settings.model_dump(mode="json"))
    assert "poll_interval: 30s" in text
    assert load_settings_text(text) == settings


def test_an_empty_file_means_all_defaults_and_no_inventory():
    settings = load_settings_text("")
    assert settings.slack.approvals_required == 2
    assert settings.slack.recovery_approvals_required == 1
    assert settings.timing.login_grace == timedelta(minutes=5)
    assert settings.dma.backoff == timedelta(milliseconds=200)
    assert settings.all_clusters() == [] and settings.names() == []
    with pytest.raises(UnknownTarget, match="the inventory is empty"):
        settings.target("dallas")


def test_an_empty_section_means_its_defaults():
    settings = load_settings_text("timing:\nslack:\n  operators:\n")
    assert settings.timing.tick == timedelta(seconds=2)
    assert settings.slack.operators == []


def test_a_yaml_syntax_error_gives_line_and_column():
    [problem] = problems_of("slack:\n  channel: C0123\n  operators: [S0OPS\ntiming: {}\n")
    assert problem.key == ""
    assert "invalid YAML at line 4, column 7" in problem.message


def test_a_key_given_twice_is_refused_with_both_lines():
    [problem] = problems_of("timing:\n  tick: 1s\ndma: {}\ntiming:\n  tick: 2s\n")
    assert "line 4" in problem.message and "'timing' twice (first at line 1)" in problem.message


def test_absurdly_nested_yaml_is_reported_not_raised():
    [problem] = problems_of("[" * 5000)
    assert problem.message == "invalid YAML: nested too deeply"


def test_a_file_that_is_not_a_mapping_is_refused():
    [problem] = problems_of("- dallas\n- denver\n")
    assert problem.message.startswith("expected a mapping of sections")


def test_unreadable_files_are_reported_not_raised(tmp_path):
    cases = {
        tmp_path / "missing.yml": "no such file",
        tmp_path: "is a directory",
    }
    binary = tmp_path / "binary.yml"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    cases[binary] = "cannot read it as UTF-8 text"
    for path, message in cases.items():
        with pytest.raises(ConfigError) as caught:
            load_settings(path)
        assert message in caught.value.format()
        assert caught.value.format().startswith(f"{path}: ")


def test_a_relative_ca_bundle_is_found_beside_the_config_file(tmp_path, monkeypatch):
    (tmp_path / "certs").mkdir()
    (tmp_path / "certs" / "ca.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    config = tmp_path / "upgradebot.yml"
    config.write_text("dma: {ca_bundle: certs/ca.pem}\n")
    monkeypatch.chdir("/")
    settings = load_settings(config)
    assert settings.dma.ca_bundle == str(tmp_path / "certs" / "ca.pem")


yaml_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 10) | st.floats(allow_nan=True)
    | st.sampled_from(["", "x", "30s", "global", "dallas", "https://a.example.com", "10.1.0.1"]),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(
        st.sampled_from(["name", "api_url", "clusters", "servers", "version", "territories",
                         "primary", "id", "ca_bundle", "global", "dallas", "x"]),
        children, max_size=4),
    max_leaves=20,
)
sections = st.dictionaries(
    st.sampled_from(["slack", "timing", "packages", "dma", "superclusters", "clusters",
                     "simulation", "escalation", "other"]),
    yaml_values, max_size=5)


@hsettings(database=None, deadline=None, max_examples=300)
@given(st.one_of(sections, yaml_values))
def test_no_input_ever_escapes_as_anything_but_a_config_error(data):
    try:
        load_settings_text(yaml.safe_dump(data))
    except ConfigError as exc:
        assert exc.problems and all(p.message for p in exc.problems)


@hsettings(database=None, deadline=None)
@given(st.text(max_size=80))
def test_no_text_ever_escapes_as_anything_but_a_config_error(text):
    try:
        load_settings_text(text)
    except ConfigError as exc:
        assert exc.problems
