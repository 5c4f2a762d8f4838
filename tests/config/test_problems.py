"""Bad input is refused key by key, with a message that says what was expected and what was
found; every problem is listed at once, one line each, with the file in front."""

from __future__ import annotations

import textwrap

import pytest

from bot.config import ConfigError, UnknownTarget, load_settings
from bot.engine.errors import UserError
from tests.config.helpers import CLUSTER, keys_of, problems_of, sc_with

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
                               "slack, timing, escalation, checklist, packages, dma, "
                               "worker, superclusters"),
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
     "expected a mapping with keys name, clusters, seed, got 'global'"),
    ("clusters: {name: lab}", "clusters", "expected a list, got a mapping"),
    ('packages: {"10.1": {url: "https://f.example.com/p.bin"}}', "packages[10.1]",
     "expected a DMA version like 10.0.0.3"),
    ('packages: {"10.1.0.1": {url: "ftp://f.example.com/p.bin"}}', "packages[10.1.0.1].url",
     "expected an http:// or https:// URL"),
    ('packages: {"10.1.0.1": {url: "https://f.example.com/p.bin", sha1: abc}}',
     "packages[10.1.0.1].sha1", "expected 40 hexadecimal digits, got 'abc'"),
    ("slack: {approvals_required: 0}", "slack.approvals_required",
     "expected a number of at least 1, got 0"),
    ("slack: {recovery_approvals_required: 0}", "slack.recovery_approvals_required",
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
    ("escalation: {renotify_every: soon}", "escalation.renotify_every",
     "expected a duration like 30s, 5m, 1h"),
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


def test_config_errors_and_unknown_targets_are_user_errors():
    assert issubclass(ConfigError, UserError) and issubclass(UnknownTarget, UserError)
    assert str(UnknownTarget("x", None)).startswith("no supercluster or cluster named 'x'")
