"""The sections of the configuration and `Settings` as code uses them: defaults filled in,
model-level checks, targets, and TLS verification per cluster."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import ValidationError

import bot.config as config
from bot.config import ClusterSpec, Settings, SuperclusterSpec, UnknownTarget, load_settings_text
from bot.engine import durations
from tests.config.helpers import INVENTORY, problems_of


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


def test_the_durations_of_the_file_are_the_engines():
    assert config.parse_duration is durations.parse_duration
    assert config.format_duration is durations.spell_duration
