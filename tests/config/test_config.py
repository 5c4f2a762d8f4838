"""The configuration file and environment as an operator meets them: good files load, bad ones
are refused with every problem named by key, and secrets never show."""

from __future__ import annotations

import textwrap
from datetime import timedelta

import pytest
import yaml
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from pydantic import ValidationError

from bot.config import (
    EXAMPLES_DIR,
    REHEARSAL_EXAMPLE,
    ClusterSpec,
    ConfigError,
    Environment,
    Problem,
    Settings,
    SuperclusterSpec,
    UnknownTarget,
    format_duration,
    load_settings,
    load_settings_text,
    parse_duration,
)

INVENTORY = """
superclusters:
  - name: global
    clusters:
      - {name: dallas, api_url: "https://dma-dallas.example.com:8443/api/rest"}
      - {name: denver, api_url: "https://dma-denver.example.com:8443/api/rest"}
clusters:
  - {name: lab, api_url: "https://dma-lab.example.com/api/rest", servers: 1}
"""


def problems_of(text: str) -> list[Problem]:
    with pytest.raises(ConfigError) as caught:
        load_settings_text(textwrap.dedent(text), "upgradebot.yml")
    return list(caught.value.problems)


def keys_of(text: str) -> list[str]:
    return [p.key for p in problems_of(text)]


# ----------------------------------------------------------------------------------- durations


@pytest.mark.parametrize(("value", "expected"), [
    ("30s", timedelta(seconds=30)),
    ("5m", timedelta(minutes=5)),
    ("1h", timedelta(hours=1)),
    ("1h30m", timedelta(hours=1, minutes=30)),
    ("1h 30m 5s", timedelta(hours=1, minutes=30, seconds=5)),
    ("90", timedelta(seconds=90)),
    (90, timedelta(seconds=90)),
    (2.5, timedelta(seconds=2.5)),
    ("0.2s", timedelta(milliseconds=200)),
    (" 2M ", timedelta(minutes=2)),
    ("1.5h", timedelta(minutes=90)),
])
def test_parse_duration_accepts_the_documented_spellings(value, expected):
    assert parse_duration(value) == expected


@pytest.mark.parametrize("value", ["soon", "", "5x", "1m1h", "-5s", -1, True, float("nan"), "1e3",
                                   10**30])
def test_parse_duration_says_what_it_expected(value):
    with pytest.raises(ValueError, match="expected a duration like 30s, 5m, 1h or a number of "
                                         "seconds, got"):
        parse_duration(value)


@hsettings(database=None, deadline=None)
@given(st.integers(min_value=0, max_value=10**6), st.sampled_from(["s", "m", "h"]))
def test_n_units_parse_to_that_many_units_and_format_back(n, unit):
    seconds = {"s": 1, "m": 60, "h": 3600}[unit] * n
    parsed = parse_duration(f"{n}{unit}")
    assert parsed == timedelta(seconds=seconds)
    assert parse_duration(format_duration(parsed)) == parsed


@hsettings(database=None, deadline=None)
@given(st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=10**5)))
def test_format_duration_round_trips_to_the_microsecond(value):
    assert parse_duration(format_duration(value)) == value


def test_format_duration_spells_like_the_file():
    assert [format_duration(timedelta(seconds=s)) for s in (0, 0.2, 30, 90, 5400, 3600)] == \
        ["0s", "0.2s", "30s", "1m30s", "1h30m", "1h"]


# ------------------------------------------------------------------------------------- examples


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
    assert settings.timing.login_grace == timedelta(minutes=5)
    assert settings.dma.backoff == timedelta(milliseconds=200)
    assert settings.all_clusters() == [] and settings.names() == []
    with pytest.raises(UnknownTarget, match="the inventory is empty"):
        settings.target("dallas")


def test_an_empty_section_means_its_defaults():
    settings = load_settings_text("timing:\nslack:\n  operators:\n")
    assert settings.timing.tick == timedelta(seconds=2)
    assert settings.slack.operators == []


def test_durations_given_as_numbers_are_seconds():
    settings = load_settings_text("timing: {poll_interval: 45, drain_timeout: 1.5}\n")
    assert settings.timing.poll_interval == timedelta(seconds=45)
    assert settings.timing.drain_timeout == timedelta(seconds=1.5)


def test_fqdn_and_port_default_from_the_api_url():
    settings = load_settings_text("""
clusters:
  - {name: a, api_url: "https://dma-a.example.com:8443/api/rest"}
  - {name: b, api_url: "https://dma-b.example.com/api/rest"}
  - {name: c, api_url: "http://dma-c.example.com/api/rest"}
  - {name: d, api_url: "https://dma-d.example.com/api/rest", fqdn: d.internal, port: 9443}
""")
    assert [(c.fqdn, c.port) for c in settings.clusters] == [
        ("dma-a.example.com", 8443), ("dma-b.example.com", 443), ("dma-c.example.com", 80),
        ("d.internal", 9443)]


# ------------------------------------------------------------------------------ bad input: keys

CLUSTER = '{name: %s, api_url: "https://dma-%s.example.com/api/rest"}'
SC = "superclusters:\n  - name: global\n    clusters:\n"


def sc_with(*lines: str) -> str:
    return SC + "".join(f"      - {line}\n" for line in lines)


BAD_INPUTS = [
    ("timing: {poll_interval: soon}",
     "timing.poll_interval",
     "expected a duration like 30s, 5m, 1h or a number of seconds, got 'soon'"),
    ("timing: {tick: 0}", "timing.tick", "longer than zero"),
    ("timing: {escalate_after: 1}", "timing.escalate_after", "greater than 1, got 1"),
    ("timing: {lease: 1s}", "timing.lease", "must be longer than tick (2s)"),
    ("timing: {max_parallel_installs: many}", "timing.max_parallel_installs",
     "expected a whole number, got 'many'"),
    ("timeing: {}", "timeing", "unknown key 'timeing' (did you mean 'timing'?); expected one of: "
                               "slack, timing, escalation, packages, dma, superclusters"),
    (sc_with(CLUSTER % ("dallas", "dallas"),
             '{name: denver, api_url: "https://dma-denver.example.com/api/rest", servers: 3}'),
     "superclusters[global].clusters[denver].servers", "expected 1 or 2, got 3"),
    (sc_with('{name: denver, api_url: "https://dma-denver.example.com/api/rest", sever: 2}'),
     "superclusters[global].clusters[denver].sever",
     "unknown key 'sever' (did you mean 'servers'?); expected one of: name, api_url, servers,"),
    (sc_with('{name: denver, api_url: "dma-denver.example.com:8443"}'),
     "superclusters[global].clusters[denver].api_url",
     "expected an http:// or https:// URL with a host"),
    (sc_with('{name: denver, api_url: "https:///api/rest"}'),
     "superclusters[global].clusters[denver].api_url", "with a host"),
    (sc_with("{name: denver}"), "superclusters[global].clusters[denver].api_url", "required"),
    (sc_with('{name: my cluster, api_url: "https://x.example.com"}'),
     "superclusters[global].clusters[0].name", "expected a name of letters, digits"),
    (sc_with('{name: 2024, api_url: "https://x.example.com"}'),
     "superclusters[global].clusters[0].name", "expected text, got 2024 (quote it"),
    (sc_with(*(CLUSTER % (n, n) for n in "abcdef")), "superclusters[global].clusters",
     "a supercluster has 1 to 5 clusters (the DMA's limit), got 6"),
    ("superclusters: [{name: global, clusters: []}]", "superclusters[global].clusters",
     "1 to 5 clusters"),
    ("superclusters: [global]", "superclusters[0]",
     "expected a mapping with keys name, clusters, got 'global'"),
    ("clusters: {name: lab}", "clusters", "expected a list, got a mapping"),
    ('packages: {"10.1": {url: "https://f.example.com/p.bin"}}', "packages[10.1]",
     "expected a DMA version like 10.0.0.3"),
    ('packages: {"10.1.0.1": {url: "ftp://f.example.com/p.bin"}}', "packages[10.1.0.1].url",
     "expected an http:// or https:// URL"),
    ('packages: {"10.1.0.1": {url: "https://f.example.com/p.bin", sha1: abc}}',
     "packages[10.1.0.1].sha1", "expected 40 hexadecimal digits, got 'abc'"),
    ("slack: {approvals_required: 0}", "slack.approvals_required",
     "expected a number of at least 1, got 0"),
    ("slack: {approvers: [U0AAA, U0BBB], approvals_required: 3}", "slack.approvals_required",
     "3 approvals are required but only 2 approver(s) are listed"),
    ("slack: {operators: [U0OK, alice]}", "slack.operators[1]",
     "expected a Slack user id (U... or W...) or user-group id (S...), got 'alice'"),
    ("slack: {channel: '#upgrades'}", "slack.channel", "expected a Slack channel id"),
    ("slack: {approve_reaction: ':white_check_mark:'}", "slack.approve_reaction",
     "without colons"),
    ("slack: {approve_reaction: x}", "slack.reject_reaction", "must differ from approve_reaction"),
    ("escalation: {notify: [oncall]}", "escalation.notify[0]", "Slack user id"),
    ("dma: {verify_tls: maybe}", "dma.verify_tls", "expected true or false, got 'maybe'"),
    ("dma: {ca_bundle: no-such-ca.pem}", "dma.ca_bundle", "CA bundle file not found"),
    ("dma: {retries: -1}", "dma.retries", "at least 0"),
    ("simulation: {version: '10'}", "simulation.version", "expected a DMA version"),
]


@pytest.mark.parametrize(("text", "key", "message"), BAD_INPUTS,
                         ids=[key for _, key, _ in BAD_INPUTS])
def test_bad_input_is_reported_at_its_key_with_a_clear_message(text, key, message):
    problems = problems_of(text)
    assert [p.key for p in problems] == [key]
    assert message in problems[0].message


def test_the_same_cluster_in_two_superclusters_is_refused():
    text = f"""
superclusters:
  - name: east
    clusters: [{CLUSTER % ("dallas", "dallas")}]
  - name: west
    clusters: [{CLUSTER % ("dallas", "dallas2")}]
"""
    [problem] = problems_of(text)
    assert problem.key == "superclusters[west].clusters[dallas].name"
    assert "already in supercluster 'east'" in problem.message


def test_a_cluster_listed_twice_in_one_supercluster_is_named_by_position():
    [problem] = problems_of(sc_with(CLUSTER % ("dallas", "a"), CLUSTER % ("Dallas", "b")))
    assert problem.key == "superclusters[global].clusters[1].name"
    assert "listed twice in supercluster 'global'" in problem.message


def test_a_superclustered_cluster_cannot_also_be_stand_alone():
    text = sc_with(CLUSTER % ("dallas", "a")) + f"clusters: [{CLUSTER % ('dallas', 'b')}]\n"
    [problem] = problems_of(text)
    assert problem.key == "clusters[dallas].name"
    assert "not both" in problem.message


def test_a_cluster_cannot_share_a_supercluster_name():
    text = sc_with(CLUSTER % ("dallas", "a")) + f"clusters: [{CLUSTER % ('global', 'b')}]\n"
    [problem] = problems_of(text)
    assert problem.key == "clusters[global].name"
    assert "already used by the supercluster at superclusters[global]" in problem.message


def test_simulation_must_name_clusters_of_the_inventory():
    text = sc_with(CLUSTER % ("dallas", "a"), CLUSTER % ("denver", "b")) + textwrap.dedent("""\
        clusters: [{name: lab, api_url: "https://lab.example.com"}]
        simulation:
          clusters: {dalas: {active_calls: 1}}
          faults: {nowhere: [never-returns]}
          territories:
            globl: []
            global:
              - {id: t1, name: One, primary: lab, backup: denver}
              - {id: t2, name: Two, primary: denver, backup: denver}
        """)
    problems = {p.key: p.message for p in problems_of(text)}
    assert problems["simulation.clusters[dalas]"].startswith(
        "unknown cluster 'dalas'; did you mean 'dallas'?")
    assert "unknown cluster 'nowhere'" in problems["simulation.faults[nowhere]"]
    assert "did you mean 'global'" in problems["simulation.territories[globl]"]
    assert problems["simulation.territories[global][t1].primary"] == \
        "'lab' is not a cluster of supercluster 'global' (its clusters: dallas, denver)"
    assert "another cluster than the primary" in \
        problems["simulation.territories[global][t2].backup"]
    assert len(problems) == 5


def test_at_most_three_clusters_host_conference_rooms():
    names = ["a", "b", "c", "d"]
    territories = "".join(
        f"      - {{id: t{n}, name: T, primary: {n}, conference_room_host: true}}\n" for n in names)
    text = sc_with(*(CLUSTER % (n, n) for n in names)) + \
        "simulation:\n  territories:\n    global:\n" + territories
    [problem] = problems_of(text)
    assert problem.key == "simulation.territories[global]"
    assert "at most 3 clusters" in problem.message and "got 4" in problem.message


def test_every_problem_is_listed_at_once():
    text = sc_with(
        '{name: denver, api_url: "https://dma-denver.example.com/api/rest", servers: 3}',
        CLUSTER % ("denver", "d2"),
    ) + textwrap.dedent("""\
        timing: {poll_interval: soon}
        slack: {approvers: [nobody]}
        packages: {"10.1.0.1": {url: "https://f.example.com/p.bin", sha1: "xyz"}}
        """)
    assert sorted(keys_of(text)) == sorted([
        "superclusters[global].clusters[0].servers",
        "superclusters[global].clusters[1].name",
        "timing.poll_interval",
        "slack.approvers[0]",
        "packages[10.1.0.1].sha1",
    ])


def test_the_error_lists_one_line_per_problem_with_file_and_key(tmp_path):
    path = tmp_path / "upgradebot.yml"
    path.write_text("timing:\n  poll_interval: soon\n  tick: never\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert caught.value.source == str(path)
    assert caught.value.format().splitlines() == [
        f"{path}: timing.poll_interval: expected a duration like 30s, 5m, 1h or a number of "
        "seconds, got 'soon'",
        f"{path}: timing.tick: expected a duration like 30s, 5m, 1h or a number of seconds, got "
        "'never'",
    ]
    assert str(caught.value) == caught.value.format()


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


def test_a_ca_bundle_with_verification_off_is_contradictory(tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    [problem] = problems_of(
        f'clusters: [{{name: lab, api_url: "https://lab.example.com", verify_tls: false, '
        f'ca_bundle: "{ca}"}}]')
    assert problem.key == "clusters[lab].ca_bundle"
    assert "only used when verify_tls is true" in problem.message


def test_settings_built_in_code_are_checked_too():
    dallas = ClusterSpec(name="dallas", api_url="https://dma-dallas.example.com")
    with pytest.raises(ValidationError, match="already in supercluster 'east'"):
        Settings(superclusters=[SuperclusterSpec(name="east", clusters=[dallas]),
                                SuperclusterSpec(name="west", clusters=[dallas])])


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


# -------------------------------------------------------------------------------- inventory use


@pytest.fixture
def inventory() -> Settings:
    return load_settings_text(INVENTORY)


def test_a_target_is_a_supercluster_or_a_cluster(inventory):
    whole = inventory.target("global")
    assert (whole.kind, [c.name for c in whole.clusters]) == ("supercluster", ["dallas", "denver"])
    one = inventory.target("Denver")
    assert (one.kind, one.name, one.supercluster and one.supercluster.name) == \
        ("cluster", "denver", "global")
    lab = inventory.target("lab")
    assert (lab.kind, lab.supercluster, lab.clusters[0].servers) == ("cluster", None, 1)
    assert inventory.names() == ["global", "dallas", "denver", "lab"]
    assert inventory.supercluster_of("lab") is None


def test_an_unknown_target_suggests_the_nearest_name(inventory):
    with pytest.raises(UnknownTarget) as caught:
        inventory.target("dalas")
    assert (caught.value.name, caught.value.nearest) == ("dalas", "dallas")
    assert str(caught.value) == ("no supercluster or cluster named 'dalas' in the inventory; "
                                 "did you mean 'dallas'? Known: global, lab")
    assert inventory.nearest_name("zzzz") is None


def test_verification_follows_the_cluster_then_the_global_setting(tmp_path):
    ca, lab_ca = tmp_path / "ca.pem", tmp_path / "lab.pem"
    ca.write_text("x")
    lab_ca.write_text("x")
    settings = load_settings_text(f"""
dma: {{verify_tls: false, ca_bundle: "{ca}"}}
clusters:
  - {{name: plain, api_url: "https://plain.example.com"}}
  - {{name: strict, api_url: "https://strict.example.com", verify_tls: true}}
  - {{name: own, api_url: "https://own.example.com", ca_bundle: "{lab_ca}"}}
""")
    plain, strict, own = settings.clusters
    assert settings.verify_for(plain) is False
    assert settings.verify_for(strict) == str(ca)
    assert settings.verify_for(own) == str(lab_ca)
    [warning] = settings.tls_warnings()
    assert "TLS verification is off for cluster 'plain'" in warning
    assert "dma.verify_tls" in warning


def test_tls_warnings_name_each_unprotected_cluster(inventory):
    assert inventory.tls_warnings() == []
    assert inventory.verify_for(inventory.clusters[0]) is True
    settings = load_settings_text("""
clusters:
  - {name: insecure, api_url: "https://insecure.example.com", verify_tls: false}
  - {name: clear, api_url: "http://clear.example.com/api/rest"}
  - {name: sim, api_url: "http://127.0.0.1:8443/sim/api/rest"}
""")
    warnings = settings.tls_warnings()
    assert len(warnings) == 2
    assert "cluster 'insecure'" in warnings[0] and "its verify_tls" in warnings[0]
    assert "cluster 'clear' is reached over plain http" in warnings[1]


# ---------------------------------------------------------------------------------- environment


def test_environment_defaults():
    env = Environment.from_env({})
    assert env == Environment()
    assert (env.slack_api_url, env.database_url, env.config_path) == \
        ("https://slack.com/api/", "sqlite:///upgradebot.db", "upgradebot.yml")
    assert env.slack_bot_token is None and env.dma_password is None and not env.socket_mode


def test_environment_reads_each_variable_and_treats_blank_as_unset():
    env = Environment.from_env({
        "SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "sig", "SLACK_APP_TOKEN": " ",
        "SLACK_API_URL": "http://127.0.0.1:9000/api/", "DATABASE_URL": "",
        "UPGRADEBOT_CONFIG": "/etc/upgradebot.yml", "DMA_USERNAME": "admin",
        "DMA_PASSWORD": "pw", "HOME": "/root",
    })
    assert env == Environment(slack_bot_token="xoxb-1", slack_signing_secret="sig",
                              slack_api_url="http://127.0.0.1:9000/api/",
                              config_path="/etc/upgradebot.yml", dma_username="admin",
                              dma_password="pw")
    assert not env.socket_mode
    assert Environment.from_env({"SLACK_APP_TOKEN": "xapp-1"}).socket_mode


def test_environment_repr_never_shows_secrets():
    env = Environment.from_env({
        "SLACK_BOT_TOKEN": "xoxb-secret-token", "SLACK_SIGNING_SECRET": "signing-secret",
        "SLACK_APP_TOKEN": "xapp-secret-token", "DMA_PASSWORD": "dma-secret",
        "DMA_USERNAME": "admin",
        "DATABASE_URL": "postgresql+psycopg://bot:db-secret@db.example.com:5432/upgradebot",
    })
    shown = repr(env) + str(env)
    for secret in ("xoxb-secret-token", "signing-secret", "xapp-secret-token", "dma-secret",
                   "db-secret"):
        assert secret not in shown
    assert "dma_username='admin'" in shown
    assert "postgresql+psycopg://bot:***@db.example.com:5432/upgradebot" in shown
    assert "slack_bot_token='***'" in shown and "slack_app_token='***'" in shown
