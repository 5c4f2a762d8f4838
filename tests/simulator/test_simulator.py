"""The DMA simulator as a bot sees it: plain HTTP requests, time moved by a FakeClock."""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator, Sequence
from datetime import timedelta
from types import TracebackType
from typing import Any

import pytest
import requests

from bot.clock import FakeClock
from bot.simulator import (
    DmaSimulator,
    Fault,
    FaultKind,
    SimCluster,
    SimSupercluster,
    SimTerritory,
    parse_fault,
    serve,
)

AUTH = ("admin", "admin")
PKG_PATCH, PKG_MINOR = "https://pkgs.example/dma-10.0.1.4.bin", "https://pkgs.example/dma-10.1.0.1.bin"
PACKAGES = {PKG_PATCH: "10.0.1.4", PKG_MINOR: "10.1.0.1"}
DROPPED = "dropped"


class Dma:
    """One simulated cluster's API through plain `requests`."""

    def __init__(self, sim: DmaSimulator, name: str) -> None:
        self.name = name
        self.url = sim.url_for(name)

    def request(self, method: str, path: str, *, auth: Any = AUTH, **kw: Any) -> requests.Response:
        return requests.request(method, self.url + path, auth=auth, timeout=5, **kw)

    def get(self, path: str) -> Any:
        r = self.request("GET", path)
        assert r.status_code == 200, r.text
        return r.json()

    def post(self, path: str, body: Any = None, *, expect: int = 202) -> Any:
        r = self.request("POST", path, json=body)
        assert r.status_code == expect, r.text
        return r.json()

    def outcome(self, method: str = "GET", path: str = "/installed-software", **kw: Any) -> Any:
        """Return the status code, or DROPPED when the connection closed without an answer."""
        try:
            return self.request(method, path, **kw).status_code
        except requests.ConnectionError:
            return DROPPED

    def refusal(self, method: str, path: str, body: Any = None, **kw: Any) -> tuple[int, str]:
        r = self.request(method, path, json=body, **kw)
        assert r.headers["Content-Type"] == "application/vnd.plcm.plcm-error+json"
        assert r.json()["status"] == r.status_code
        return r.status_code, r.json()["message"]


class Lab:
    """A FakeClock and the simulators started on it, stopped at the end."""

    def __init__(self) -> None:
        self.clock = FakeClock()
        self.sims: list[DmaSimulator] = []

    def start(self, clusters: Sequence[SimCluster], superclusters: Sequence[SimSupercluster] = (),
              **kw: Any) -> DmaSimulator:
        kw.setdefault("packages", PACKAGES)
        sim = DmaSimulator(clusters, superclusters, clock=self.clock, **kw)
        sim.start()
        self.sims.append(sim)
        return sim

    def dma(self, name: str) -> Dma:
        return Dma(self.sims[-1], name)

    def minutes(self, m: float) -> None:
        self.clock.advance(timedelta(minutes=m))

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None:
        for sim in self.sims:
            sim.stop()


def upload(lab: Lab, dma: Dma, url: str = PKG_MINOR) -> None:
    """Upload a package by URL and wait until it is fetched (2 virtual minutes)."""
    dma.post("/installed-software/upgrade-package/url", {"url": url})
    lab.minutes(2)


def install(lab: Lab, dma: Dma, url: str = PKG_MINOR, minutes: float = 35) -> None:
    """Upload, apply, and wait through the install and the 1-minute login delay."""
    upload(lab, dma, url)
    dma.post("/installed-software/upgrade-package/apply")
    lab.minutes(minutes + 1)


@pytest.fixture
def lab() -> Iterator[Lab]:
    with Lab() as running:
        yield running


# --- installing --------------------------------------------------------------------------------


def test_install_goes_unreachable_then_401_then_up_on_the_new_version(lab: Lab) -> None:
    sim = lab.start([SimCluster("dallas", estimated_install_minutes=35)])
    dallas = lab.dma("dallas")
    before = dallas.get("/installed-software")
    assert before["upgradeVersion"] is None and before["estimatedInstallMinutes"] is None

    # The package is fetched: the details show its version and the estimate.
    dallas.post("/installed-software/upgrade-package/url", {"url": PKG_MINOR, "sha1": "ab12"})
    assert dallas.get("/installed-software")["upgradeVersion"] is None
    lab.minutes(2)
    uploaded = dallas.get("/installed-software")
    assert (uploaded["upgradeVersion"], uploaded["estimatedInstallMinutes"]) == ("10.1.0.1", 35)
    assert uploaded["sha1"] == "ab12"

    started = dallas.post("/installed-software/upgrade-package/apply")
    assert started["operationType"] == "UPGRADE"
    # Restarting: connections dropped and 503, alternately, until the estimate has passed.
    assert {dallas.outcome() for _ in range(4)} == {DROPPED, 503}
    lab.minutes(34.9)
    assert dallas.outcome() in (DROPPED, 503)
    lab.minutes(0.2)
    assert dallas.outcome() == 401  # services starting: cannot log in yet
    lab.minutes(1)

    after = dallas.get("/installed-software")
    assert after["systemVersion"] == "10.1.0.1" == sim.version_of("dallas")
    assert after["rollBackVersion"] == "10.0.0.3"
    assert after["upgradeVersion"] is None and after["estimatedInstallMinutes"] is None
    assert [(h["server"], h["fromVersion"], h["toVersion"], h["upgradeStatus"], h["userName"])
            for h in after["upgradeHistory"]] == [
        (1, "10.0.0.3", "10.1.0.1", "UPGRADE_SUCCESSFUL", "admin"),
        (2, "10.0.0.3", "10.1.0.1", "UPGRADE_SUCCESSFUL", "admin")]
    ha = dallas.get("/high-availability/status")
    assert ha["haActive"] and ha["haConnected"]
    assert [(n["state"], n["packageVersion"]) for n in ha["nodeStateList"]] == [
        ("UP", "10.1.0.1"), ("UP", "10.1.0.1")]


def test_a_single_server_cluster_shows_one_node_and_no_ha(lab: Lab) -> None:
    lab.start([SimCluster("solo", servers=1)])
    ha = lab.dma("solo").get("/high-availability/status")
    assert ha["haActive"] is False and len(ha["nodeStateList"]) == 1


def test_apply_needs_a_fetched_package_and_unknown_packages_are_refused(lab: Lab) -> None:
    lab.start([SimCluster("dallas")])
    dallas = lab.dma("dallas")
    assert dallas.refusal("POST", "/installed-software/upgrade-package/apply")[0] == 409
    status, message = dallas.refusal("POST", "/installed-software/upgrade-package/url",
                                     {"url": "https://pkgs.example/mystery.bin"})
    assert status == 400 and "unknown package" in message
    dallas.post("/installed-software/upgrade-package/url", {"url": PKG_MINOR})
    status, message = dallas.refusal("POST", "/installed-software/upgrade-package/apply")
    assert status == 409 and "still being fetched" in message


def test_a_package_file_can_be_uploaded_as_octet_stream(lab: Lab) -> None:
    lab.start([SimCluster("dallas")])
    dallas = lab.dma("dallas")
    r = dallas.request("POST", "/installed-software/upgrade-package",
                       data=b"DMA-PACKAGE 10.2.0.7\n\x00\x01payload",
                       headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 201 and r.json()["upgradeVersion"] == "10.2.0.7"
    bad = dallas.request("POST", "/installed-software/upgrade-package", data=b"MZ\x90\x00",
                         headers={"Content-Type": "application/octet-stream"})
    assert bad.status_code == 400 and "DMA-PACKAGE" in bad.json()["message"]


def test_rollback_restores_the_last_version_once(lab: Lab) -> None:
    sim = lab.start([SimCluster("dallas")])
    dallas = lab.dma("dallas")
    status, message = dallas.refusal("POST", "/installed-software/rollback")
    assert status == 409 and "nothing to roll back" in message
    install(lab, dallas)

    assert dallas.post("/installed-software/rollback")["operationType"] == "ROLLBACK"
    assert dallas.outcome() in (DROPPED, 503)
    lab.minutes(6)  # about five minutes, then the login delay
    software = dallas.get("/installed-software")
    assert software["systemVersion"] == "10.0.0.3" == sim.version_of("dallas")
    assert software["rollBackVersion"] is None
    assert [h["upgradeStatus"] for h in software["upgradeHistory"][-2:]] == [
        "ROLLBACK_SUCCESSFUL"] * 2
    assert dallas.refusal("POST", "/installed-software/rollback")[0] == 409


def test_speed_divides_every_duration(lab: Lab) -> None:
    lab.start([SimCluster("dallas", estimated_install_minutes=35)], speed=60)
    dallas = lab.dma("dallas")
    dallas.post("/installed-software/upgrade-package/url", {"url": PKG_MINOR})
    lab.clock.advance(2)  # 2 virtual minutes = 2 s at speed 60
    dallas.post("/installed-software/upgrade-package/apply")
    lab.clock.advance(34)
    assert dallas.outcome() in (DROPPED, 503)
    lab.clock.advance(1.5)
    assert dallas.outcome() == 401
    lab.clock.advance(1)  # the 1-minute login delay is 1 s
    assert dallas.get("/installed-software")["systemVersion"] == "10.1.0.1"


# --- HTTP contract -----------------------------------------------------------------------------


def test_every_cluster_path_needs_basic_auth(lab: Lab) -> None:
    lab.start([SimCluster("dallas")], username="ops", password="s3cret")
    dallas = lab.dma("dallas")
    for auth in (None, ("ops", "wrong"), ("admin", "admin")):
        r = dallas.request("GET", "/installed-software", auth=auth)
        assert r.status_code == 401 and r.json()["status"] == 401
        assert r.headers["WWW-Authenticate"].startswith("Basic")
    assert dallas.request("GET", "/status", auth=("ops", "s3cret")).status_code == 200
    garbage = {"Authorization": "Basic " + base64.b64encode(b"\xff\xfe").decode()}
    assert dallas.request("GET", "/status", auth=None, headers=garbage).status_code == 401


def test_answers_use_vnd_types_and_both_json_request_types_are_accepted(lab: Lab) -> None:
    lab.start([SimCluster("dallas")])
    dallas = lab.dma("dallas")
    r = dallas.request("GET", "/installed-software")
    assert r.headers["Content-Type"] == "application/vnd.plcm.plcm-software-upgrade-details+json"
    assert r.headers["ETag"].strip('"') == r.json()["entityTag"]
    body = b'{"url": "%s"}' % PKG_MINOR.encode()
    path = "/installed-software/upgrade-package/url"
    for kind in ("application/json", "application/vnd.plcm.plcm-software-upgrade-url+json"):
        assert dallas.request("POST", path, data=body,
                              headers={"Content-Type": kind}).status_code == 202
    assert dallas.request("POST", path, data=body,
                          headers={"Content-Type": "text/plain"}).status_code == 415
    assert dallas.refusal("GET", "/no-such-thing")[0] == 404
    assert dallas.refusal("DELETE", "/installed-software")[0] == 405
    base = lab.sims[-1].base_url
    assert requests.get(base + "/dallas/elsewhere", auth=AUTH, timeout=5).status_code == 404
    assert requests.get(base + "/paris/api/rest/status", auth=AUTH, timeout=5).status_code == 404


def test_the_request_log_records_every_cluster_request_in_order(lab: Lab) -> None:
    sim = lab.start([SimCluster("dallas"), SimCluster("denver")])
    dallas, denver = lab.dma("dallas"), lab.dma("denver")
    dallas.get("/installed-software")
    denver.request("GET", "/status", auth=None)
    dallas.post("/installed-software/upgrade-package/url", {"url": PKG_MINOR})
    lab.minutes(2)
    dallas.post("/installed-software/upgrade-package/apply")
    dallas.outcome()
    dallas.outcome()
    denver.get("/dma-supercluster/check-compatibility?dmaVersion=10.0.2")
    requests.get(sim.base_url + "/_sim/state", timeout=5)  # admin calls are not logged

    log = sim.requests
    assert [(r.cluster, r.method, r.path, r.status) for r in log] == [
        ("dallas", "GET", "/installed-software", 200),
        ("denver", "GET", "/status", 401),
        ("dallas", "POST", "/installed-software/upgrade-package/url", 202),
        ("dallas", "POST", "/installed-software/upgrade-package/apply", 202),
        ("dallas", "GET", "/installed-software", None),
        ("dallas", "GET", "/installed-software", 503),
        ("denver", "GET", "/dma-supercluster/check-compatibility", 200)]
    assert log[2].body == {"url": PKG_MINOR}
    assert log[-1].query == "dmaVersion=10.0.2"
    assert log[3].at == log[2].at + timedelta(minutes=2)
    assert sim.count("GET", "/installed-software") == 3
    assert sim.count("GET", "/installed-software", cluster="denver") == 0
    assert sim.count("get", "/installed-software/") == 0  # exact path match


def test_admin_endpoints_show_state_and_log_and_set_faults(lab: Lab) -> None:
    sim = lab.start([SimCluster("dallas")])
    admin = sim.base_url + "/_sim"
    lab.dma("dallas").get("/status")

    state = requests.get(admin + "/state", timeout=5).json()
    assert state["clusters"]["dallas"]["version"] == "10.0.0.3"
    assert state["clusters"]["dallas"]["membership"] == "STANDALONE"
    logged = requests.get(admin + "/requests", timeout=5).json()
    assert [(r["cluster"], r["path"], r["status"]) for r in logged] == [("dallas", "/status", 200)]

    r = requests.post(admin + "/faults", json={"cluster": "dallas", "kind": "slow-install",
                                               "factor": 2}, timeout=5)
    assert r.status_code == 200 and r.json()["faults"] == ["slow-install"]
    assert sim.state()["clusters"]["dallas"]["faults"] == ["slow-install"]
    bad = requests.post(admin + "/faults", json={"cluster": "dallas", "kind": "gremlins"},
                        timeout=5)
    assert bad.status_code == 400 and "never-returns" in bad.json()["message"]
    unknown = requests.post(admin + "/faults", json={"cluster": "paris", "kind": "flaky"},
                            timeout=5)
    assert unknown.status_code == 404
    assert requests.delete(admin + "/faults/dallas", timeout=5).status_code == 200
    assert sim.state()["clusters"]["dallas"]["faults"] == []
    assert len(sim.requests) == 1


def test_parse_fault_reads_the_command_line_form() -> None:
    assert parse_fault("dallas=slow-install:4") == ("dallas", Fault(FaultKind.SLOW_INSTALL,
                                                                    factor=4))
    assert parse_fault("denver=flaky:0.2") == ("denver", Fault(FaultKind.FLAKY, probability=0.2))
    assert parse_fault("denver=flaky:0.2:503") == ("denver", Fault(FaultKind.FLAKY,
                                                                   probability=0.2, mode="503"))
    assert parse_fault("austin=never-returns") == ("austin", Fault(FaultKind.NEVER_RETURNS))
    assert parse_fault("a=slow-drain:90")[1].minutes == 90
    with pytest.raises(ValueError, match="valid kinds: never-returns, one-server"):
        parse_fault("dallas=meltdown")
    for bad in ("dallas", "=flaky", "dallas=flaky:lots", "dallas=one-server:2", "d=flaky:1.5"):
        with pytest.raises(ValueError):
            parse_fault(bad)


# --- territories -------------------------------------------------------------------------------


def two_cluster_supercluster(lab: Lab, **kw: Any) -> DmaSimulator:
    return lab.start(
        [SimCluster("dallas"), SimCluster("denver"), SimCluster("austin")],
        [SimSupercluster("old", ["dallas", "denver"],
                         [SimTerritory("t-am", "Americas", "dallas", "denver", True)])], **kw)


def test_put_territory_needs_a_current_tag_and_replicates_after_a_delay(lab: Lab) -> None:
    sim = two_cluster_supercluster(lab)
    dallas, denver = lab.dma("dallas"), lab.dma("denver")
    (t,) = dallas.get("/territories")["territories"]
    assert (t["primaryNodeIdentifier"], t["activeNodeIdentifier"]) == ("dallas", "dallas")
    swapped = {**t, "primaryNodeIdentifier": "denver", "backupNodeIdentifier": "dallas"}

    assert dallas.refusal("PUT", "/territories/t-am", swapped)[0] == 412  # no If-Match
    r = dallas.request("PUT", "/territories/t-am", json=swapped, headers={"If-Match": '"e999"'})
    assert r.status_code == 412
    r = dallas.request("PUT", "/territories/t-am", json=swapped,
                       headers={"If-Match": t["entityTag"]})
    assert r.status_code == 200 and r.json()["primaryNodeIdentifier"] == "denver"
    new_tag = r.json()["entityTag"]
    assert new_tag != t["entityTag"] and r.headers["ETag"] == f'"{new_tag}"'

    # Not replicated yet: every member still shows the old assignment.
    assert denver.get("/territories")["territories"][0]["primaryNodeIdentifier"] == "dallas"
    lab.clock.advance(19)
    assert sim.territories_of("dallas")[0].primary == "dallas"
    lab.clock.advance(1)
    shown = denver.get("/territories")["territories"][0]
    assert (shown["primaryNodeIdentifier"], shown["activeNodeIdentifier"]) == ("denver", "denver")
    assert denver.get("/territories/t-am")["entityTag"] == new_tag
    stale = dallas.request("PUT", "/territories/t-am", json=swapped,
                           headers={"If-Match": t["entityTag"]})
    assert stale.status_code == 412


def test_put_territory_refuses_clusters_outside_the_supercluster(lab: Lab) -> None:
    two_cluster_supercluster(lab)
    dallas = lab.dma("dallas")
    t = dallas.get("/territories/t-am")
    for primary, backup in (("austin", "dallas"), ("dallas", "dallas")):
        r = dallas.request("PUT", "/territories/t-am", headers={"If-Match": t["entityTag"]},
                           json={**t, "primaryNodeIdentifier": primary,
                                 "backupNodeIdentifier": backup})
        assert r.status_code == 409, (primary, backup)
    assert "austin is not a cluster of this supercluster" in dallas.request(
        "PUT", "/territories/t-am", headers={"If-Match": t["entityTag"]},
        json={**t, "backupNodeIdentifier": "austin"}).json()["message"]


def test_a_busied_out_primary_hands_its_territory_to_the_backup(lab: Lab) -> None:
    two_cluster_supercluster(lab)
    denver = lab.dma("denver")
    denver.post("/dma-supercluster/dallas/set-service-status", {"serviceStatus": "BUSIED_OUT"},
                expect=200)
    assert denver.get("/territories")["territories"][0]["activeNodeIdentifier"] == "denver"
    denver.post("/dma-supercluster/denver/set-service-status",
                {"serviceStatus": "OUT_OF_SERVICE"}, expect=200)
    assert denver.get("/territories")["territories"][0]["activeNodeIdentifier"] is None
    status, _ = denver.refusal("POST", "/dma-supercluster/austin/set-service-status",
                               {"serviceStatus": "IN_SERVICE"})
    assert status == 409  # austin is not a member of this supercluster


def test_serve_blocks_while_serving_and_stops(lab: Lab) -> None:
    sim = DmaSimulator([SimCluster("dallas")], clock=lab.clock)
    stop, ready = threading.Event(), threading.Event()
    runner = threading.Thread(target=serve, args=(sim,), kwargs={"stop": stop, "ready": ready})
    runner.start()
    assert ready.wait(timeout=5)
    url = sim.url_for("dallas")
    assert url.startswith("http://127.0.0.1:")
    assert requests.get(url + "/status", auth=AUTH, timeout=5).status_code == 200
    assert runner.is_alive()
    stop.set()
    runner.join(timeout=5)
    assert not runner.is_alive()
    with pytest.raises(requests.ConnectionError):
        requests.get(url + "/status", auth=AUTH, timeout=5)


def test_concurrent_requests_are_all_answered_and_logged(lab: Lab) -> None:
    sim = lab.start([SimCluster("dallas"), SimCluster("denver")])
    outcomes: list[int] = []

    def hammer(name: str) -> None:
        dma = Dma(sim, name)
        outcomes.extend(dma.request("GET", "/dma-supercluster").status_code for _ in range(10))

    threads = [threading.Thread(target=hammer, args=(n,)) for n in ["dallas", "denver"] * 4]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert outcomes == [200] * 80
    assert sim.count("GET", "/dma-supercluster") == 80
