"""DmaClient against `responses`: parsing, headers, error mapping, retries, TLS and secrets."""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
import responses
from responses import matchers
from urllib3.exceptions import MaxRetryError, NewConnectionError

from bot.dma import models
from bot.dma.client import DmaClient
from bot.dma.errors import (
    DmaBadResponse,
    DmaConflict,
    DmaError,
    DmaNotFound,
    DmaNotReachable,
    DmaRequestError,
    DmaServerError,
    DmaStaleTag,
)
from bot.dma.models import Territory

BASE = "http://127.0.0.1:8443/dallas/api/rest"
PASSWORD = "Tr0ub4dor&3-dma"
BASIC = "Basic " + base64.b64encode(f"admin:{PASSWORD}".encode()).decode()
MT = models.MEDIA_TYPES

# The JSON examples of dma-api.md.
INSTALLED = {
    "systemVersion": "10.0.0.3", "rollBackVersion": "9.0.1.2", "upgradeVersion": "10.1.0.1",
    "sha1": "5f2b…", "restartRequired": True, "activationKeyRequired": False,
    "estimatedInstallMinutes": 35,
    "upgradeHistory": [
        {"server": 1, "fromVersion": "9.0.1.2", "toVersion": "10.0.0.3", "userName": "admin",
         "upgradeStatus": "UPGRADE_SUCCESSFUL", "date": "2026-03-01T22:14:00Z"},
        {"server": 2, "fromVersion": "9.0.1.2", "toVersion": "10.0.0.3", "userName": "admin",
         "upgradeStatus": "UPGRADE_SUCCESSFUL", "date": "2026-03-01T22:15:10Z"},
    ],
    "entityTag": "a1",
}
HA = {"haActive": True, "haConnected": True, "ourId": 1, "nodeStateList": [
    {"nodeId": 1, "hostName": "dallas-a", "state": "UP", "packageVersion": "10.1.0.1"},
    {"nodeId": 2, "hostName": "dallas-b", "state": "UP", "packageVersion": "10.1.0.1"}]}
SUPERCLUSTER = {"clusters": [
    {"clusterId": "dallas", "hostName": "dma-dallas.example.com", "status": "SUPERCLUSTERED",
     "serviceStatus": "IN_SERVICE", "version": "10.0.0.3"},
    {"clusterId": "denver", "hostName": "dma-denver.example.com", "status": "SUPERCLUSTERED",
     "serviceStatus": "BUSIED_OUT", "version": "10.0.0.3"}], "warnings": []}
TERRITORIES = {"territories": [
    {"territoryIdentifier": "t-americas", "name": "Americas",
     "primaryNodeIdentifier": "dallas", "backupNodeIdentifier": "denver",
     "activeNodeIdentifier": "dallas", "conferenceRoomHost": True, "entityTag": "e7"}]}
APPLY = {"operationType": "UPGRADE", "percentageComplete": 0, "message": "upgrade starting"}
JOIN_STATUS = {"operationType": "JOIN", "percentageComplete": 100, "state": "COMPLETE",
               "message": "joined"}
STATUS = {"activeCalls": 3, "registrations": 1180, "alerts": []}


def refused() -> requests.exceptions.ConnectionError:
    """Build what requests raises when nothing listens on the port."""
    reason = NewConnectionError(None, "Failed to establish a new connection: [Errno 111] refused")  # type: ignore[arg-type]
    return requests.exceptions.ConnectionError(MaxRetryError(None, "/", reason))  # type: ignore[arg-type]


def dropped() -> requests.exceptions.ConnectionError:
    """Build what requests raises when the server closes the connection without answering."""
    return requests.exceptions.ConnectionError(
        ConnectionResetError(104, "Connection reset by peer"))


@pytest.fixture(autouse=True)
def no_secret_in_logs(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    caplog.set_level(logging.DEBUG)
    yield
    assert PASSWORD not in caplog.text
    assert BASIC.split()[1] not in caplog.text


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock() as mock:
        yield mock


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def make(sleeps: list[float]) -> Callable[..., DmaClient]:
    def build(**kwargs: Any) -> DmaClient:
        kwargs.setdefault("name", "dallas")
        return DmaClient(kwargs.pop("base_url", BASE), username="admin", password=PASSWORD,
                         sleep=sleeps.append, **kwargs)
    return build


@pytest.fixture
def client(make: Callable[..., DmaClient]) -> DmaClient:
    return make()


def raised(exc_type: type[DmaError], call: Callable[[], object]) -> DmaError:
    """Run a call that must fail; check that its error carries no secret."""
    with pytest.raises(exc_type) as info:
        call()
    error = info.value
    for text in (str(error), repr(error), error.message, error.url):
        assert PASSWORD not in text
        assert BASIC.split()[1] not in text
    return error


def accept(media: str) -> list[Any]:
    return [matchers.header_matcher({"Accept": MT[media], "Authorization": BASIC})]


def json_body(media: str, body: dict[str, Any]) -> list[Any]:
    return [matchers.header_matcher({"Accept": MT[media], "Content-Type": MT[media],
                                     "Authorization": BASIC}),
            matchers.json_params_matcher(body)]


# --- resources ---------------------------------------------------------------------------------

def test_installed_software_is_parsed_with_headers_and_timeouts(
        client: DmaClient, rsps: responses.RequestsMock, caplog: pytest.LogCaptureFixture) -> None:
    rsps.get(f"{BASE}/installed-software", json=INSTALLED,
             match=[*accept("installed-software"),
                    matchers.request_kwargs_matcher({"timeout": (10.0, 10.0)})])
    sw = client.installed_software()
    assert (sw.system_version, sw.rollback_version, sw.upgrade_version) == (
        "10.0.0.3", "9.0.1.2", "10.1.0.1")
    assert sw.restart_required and not sw.activation_key_required
    assert sw.estimated_install_minutes == 35.0 and sw.entity_tag == "a1"
    assert len(sw.history) == 2
    latest = sw.latest_for_server(2)
    assert latest is not None and latest.to_version == "10.0.0.3" and latest.succeeded
    assert "DMA dallas: GET /installed-software -> 200" in caplog.text


def test_ha_status_is_parsed(client: DmaClient, rsps: responses.RequestsMock) -> None:
    rsps.get(f"{BASE}/high-availability/status", json=HA, match=accept("high-availability"))
    ha = client.ha_status()
    assert ha.ha_active and ha.ha_connected and ha.our_id == 1
    assert [(n.host_name, n.state, n.package_version) for n in ha.nodes] == [
        ("dallas-a", "UP", "10.1.0.1"), ("dallas-b", "UP", "10.1.0.1")]


def test_supercluster_is_parsed(client: DmaClient, rsps: responses.RequestsMock) -> None:
    rsps.get(f"{BASE}/dma-supercluster", json=SUPERCLUSTER, match=accept("supercluster"))
    view = client.supercluster()
    assert view.ids == {"dallas", "denver"}
    denver = view.member("denver")
    assert denver is not None and denver.service_status == "BUSIED_OUT"
    assert view.warnings == ()


def test_check_compatibility_sends_the_version(client: DmaClient,
                                               rsps: responses.RequestsMock) -> None:
    rsps.get(f"{BASE}{models.PATH_COMPATIBILITY}", json={"compatible": False, "message": "major"},
             match=[*accept("supercluster"),
                    matchers.query_param_matcher({"dmaVersion": "10.1.0.1"})])
    compat = client.check_compatibility("10.1.0.1")
    assert not compat.compatible and compat.message == "major"


def test_operation_status_is_parsed(client: DmaClient, rsps: responses.RequestsMock) -> None:
    rsps.get(f"{BASE}{models.PATH_OPERATION_STATUS}", json=JOIN_STATUS,
             match=accept("supercluster-operation"))
    op = client.operation_status()
    assert (op.operation_type, op.percentage_complete, op.state) == ("JOIN", 100, "COMPLETE")


def test_status_is_parsed(client: DmaClient, rsps: responses.RequestsMock) -> None:
    rsps.get(f"{BASE}{models.PATH_STATUS}", json=STATUS, match=accept("status"))
    st = client.status()
    assert (st.active_calls, st.registrations, st.alerts) == (3, 1180, ())


def test_territories_are_parsed_and_updated_with_if_match(
        client: DmaClient, rsps: responses.RequestsMock) -> None:
    rsps.get(f"{BASE}/territories", json=TERRITORIES, match=accept("territory"))
    (terr,) = client.territories()
    assert (terr.territory_id, terr.primary, terr.backup, terr.active, terr.entity_tag) == (
        "t-americas", "dallas", "denver", "dallas", "e7")
    moved = Territory(**{**terr.__dict__, "primary": "denver", "backup": None})
    answer = {**moved.to_json(), "entityTag": "e8"}
    rsps.put(f"{BASE}/territories/t-americas", json=answer,
             match=[*json_body("territory", moved.to_json()),
                    matchers.header_matcher({"If-Match": "e7"})])
    updated = client.update_territory(moved)
    assert updated.primary == "denver" and updated.backup is None and updated.entity_tag == "e8"


def test_update_territory_takes_the_etag_header_when_the_body_has_none(
        client: DmaClient, rsps: responses.RequestsMock) -> None:
    terr = Territory("t-1", "One", "dallas", "denver", entity_tag="e1")
    body = {**terr.to_json(), "entityTag": None}
    rsps.put(f"{BASE}/territories/t-1", json=body, headers={"ETag": "e2"})
    assert client.update_territory(terr).entity_tag == "e2"


def test_update_territory_refuses_a_territory_without_tag(client: DmaClient) -> None:
    with pytest.raises(ValueError, match="entity tag"):
        client.update_territory(Territory("t-1", "One", "dallas", "denver"))


def test_upload_package_url_posts_url_and_sha1(client: DmaClient,
                                               rsps: responses.RequestsMock) -> None:
    path = f"{BASE}/installed-software/upgrade-package/url"
    rsps.post(path, status=202, match=json_body(
        "installed-software", {"url": "https://f.example/p.bin", "sha1": "abc"}))
    rsps.post(path, status=202, match=json_body(
        "installed-software", {"url": "https://f.example/p.bin"}))
    client.upload_package_url("https://f.example/p.bin", "abc")
    client.upload_package_url("https://f.example/p.bin", None)


def test_upload_package_file_sends_octet_stream(client: DmaClient,
                                                rsps: responses.RequestsMock) -> None:
    rsps.post(f"{BASE}/installed-software/upgrade-package", status=201, match=[
        matchers.header_matcher({"Content-Type": "application/octet-stream",
                                 "Accept": MT["installed-software"]})])
    client.upload_package_file(b"\x00package\xff")
    assert rsps.calls[0].request.body == b"\x00package\xff"


def test_apply_upgrade_returns_the_operation(client: DmaClient,
                                             rsps: responses.RequestsMock) -> None:
    rsps.post(f"{BASE}/installed-software/upgrade-package/apply", status=202, json=APPLY,
              match=accept("installed-software"))
    op = client.apply_upgrade()
    assert (op.operation_type, op.percentage_complete, op.message) == (
        "UPGRADE", 0, "upgrade starting")


def test_rollback_with_an_empty_202_still_counts_as_started(
        client: DmaClient, rsps: responses.RequestsMock) -> None:
    rsps.post(f"{BASE}/installed-software/rollback", status=202, body="")
    assert client.rollback().operation_type == "ROLLBACK"


def test_join_supercluster_posts_the_initial_host(client: DmaClient,
                                                  rsps: responses.RequestsMock) -> None:
    rsps.post(f"{BASE}/dma-supercluster", status=202, match=json_body("supercluster", {
        "initialHost": [{"fqdn": "dma-denver.example.com", "port": 8443}],
        "dmaVersion": "10.1.0.1"}))
    client.join_supercluster(fqdn="dma-denver.example.com", port=8443, version="10.1.0.1")


def test_remove_cluster_quotes_the_id(client: DmaClient, rsps: responses.RequestsMock) -> None:
    rsps.delete(f"{BASE}/dma-supercluster/new%20york%2F2", status=202)
    client.remove_cluster("new york/2")
    assert rsps.calls[0].request.path_url == "/dallas/api/rest/dma-supercluster/new%20york%2F2"


def test_set_service_status(client: DmaClient, rsps: responses.RequestsMock) -> None:
    rsps.post(f"{BASE}/dma-supercluster/denver/set-service-status", status=200,
              match=json_body("supercluster", {"serviceStatus": "BUSIED_OUT"}))
    client.set_service_status("denver", "BUSIED_OUT")
    with pytest.raises(ValueError, match="service status"):
        client.set_service_status("denver", "busy")


def test_base_url_with_trailing_slash_and_default_name(
        make: Callable[..., DmaClient], rsps: responses.RequestsMock) -> None:
    client = make(base_url="https://dma-lab.example.com:8443/api/rest/", name=None)
    assert client.name == "dma-lab.example.com"
    rsps.get("https://dma-lab.example.com:8443/api/rest/dma-supercluster", json=SUPERCLUSTER)
    client.supercluster()


def test_base_url_with_credentials_is_refused() -> None:
    with pytest.raises(ValueError) as info:
        DmaClient(f"https://admin:{PASSWORD}@dma.example.com/api/rest", username="admin",
                  password=PASSWORD)
    assert PASSWORD not in str(info.value)


# --- error mapping -----------------------------------------------------------------------------

@pytest.mark.parametrize(("code", "kind"), [
    (400, DmaRequestError), (403, DmaRequestError), (404, DmaNotFound), (409, DmaConflict),
    (412, DmaStaleTag), (500, DmaServerError)])
def test_http_errors_are_typed_and_carry_the_plcm_message(
        client: DmaClient, rsps: responses.RequestsMock, code: int,
        kind: type[DmaError]) -> None:
    rsps.post(f"{BASE}/installed-software/upgrade-package/apply", status=code,
              json={"status": code, "message": "no upgrade package uploaded"})
    error = raised(kind, client.apply_upgrade)
    assert type(error) is kind and error.status == code
    text = str(error)
    assert "no upgrade package uploaded" in text
    assert "dallas" in text and "POST /installed-software/upgrade-package/apply" in text


@pytest.mark.parametrize("code", [502, 503, 504])
def test_gateway_and_unavailable_mean_not_reachable(
        make: Callable[..., DmaClient], rsps: responses.RequestsMock, code: int) -> None:
    rsps.get(f"{BASE}/status", status=code, json={"status": code, "message": "starting"})
    error = raised(DmaNotReachable, make(retries=0).status)
    assert isinstance(error, DmaNotReachable)
    assert error.reason == "unavailable" and error.status == code and not error.request_sent
    assert "starting" in str(error)


def test_401_is_not_reachable_unauthorized_and_not_retried(
        client: DmaClient, rsps: responses.RequestsMock, sleeps: list[float]) -> None:
    rsps.get(f"{BASE}/installed-software", status=401,
             json={"status": 401, "message": "Unauthorized"})
    error = raised(DmaNotReachable, client.installed_software)
    assert isinstance(error, DmaNotReachable) and error.reason == "unauthorized"
    assert "may still be starting after a restart" in str(error)
    assert "DMA_USERNAME/DMA_PASSWORD" in str(error)
    assert len(rsps.calls) == 1 and sleeps == []


def test_redirect_is_not_followed(client: DmaClient, rsps: responses.RequestsMock) -> None:
    rsps.get(f"{BASE}/status", status=302, headers={"Location": "https://elsewhere/api/rest"})
    error = raised(DmaBadResponse, client.status)
    assert "https://elsewhere/api/rest" in str(error)


def test_a_server_echoing_the_password_is_scrubbed(client: DmaClient,
                                                   rsps: responses.RequestsMock) -> None:
    rsps.get(f"{BASE}/status", status=400, json={"status": 400, "message": f"bad {PASSWORD}"})
    error = raised(DmaRequestError, client.status)
    assert "bad ***" in str(error)


def test_tls_failure_says_how_to_configure_a_ca_bundle(
        client: DmaClient, rsps: responses.RequestsMock, sleeps: list[float]) -> None:
    rsps.get(f"{BASE}/status", body=requests.exceptions.SSLError(
        "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: self-signed certificate"))
    error = raised(DmaError, client.status)
    assert not isinstance(error, DmaNotReachable)
    assert "certificate verification failed" in str(error) and "ca_bundle" in str(error)
    assert len(rsps.calls) == 1 and sleeps == []


# --- bad answers -------------------------------------------------------------------------------

def test_malformed_json_is_a_bad_response(client: DmaClient,
                                          rsps: responses.RequestsMock) -> None:
    rsps.get(f"{BASE}/installed-software", body="{not json", content_type="application/json")
    error = raised(DmaBadResponse, client.installed_software)
    assert "not JSON" in str(error) and "GET /installed-software" in str(error)


def test_missing_field_is_a_bad_response_naming_it(client: DmaClient,
                                                   rsps: responses.RequestsMock) -> None:
    rsps.get(f"{BASE}/installed-software", json={k: v for k, v in INSTALLED.items()
                                                 if k != "systemVersion"})
    error = raised(DmaBadResponse, client.installed_software)
    assert "'systemVersion'" in str(error) and "dallas" in str(error)


def test_mistyped_field_is_a_bad_response_naming_it(client: DmaClient,
                                                    rsps: responses.RequestsMock) -> None:
    rsps.get(f"{BASE}/high-availability/status", json={**HA, "haActive": "yes"})
    error = raised(DmaBadResponse, client.ha_status)
    assert "'haActive'" in str(error)


def test_malformed_apply_answer_says_the_request_was_accepted(
        client: DmaClient, rsps: responses.RequestsMock) -> None:
    rsps.post(f"{BASE}/installed-software/upgrade-package/apply", status=202, json={"x": 1})
    error = raised(DmaBadResponse, client.apply_upgrade)
    assert "'operationType'" in str(error) and "accepted" in str(error)


# --- retries -----------------------------------------------------------------------------------

def test_get_is_retried_with_exponential_backoff_until_it_succeeds(
        make: Callable[..., DmaClient], rsps: responses.RequestsMock,
        sleeps: list[float]) -> None:
    url = f"{BASE}/high-availability/status"
    rsps.get(url, body=refused())
    rsps.get(url, status=503)
    rsps.get(url, body=requests.exceptions.ReadTimeout("read timed out"))
    rsps.get(url, body=dropped())
    rsps.get(url, json=HA)
    assert make(retries=4, backoff=0.5).ha_status().ha_active
    assert sleeps == [0.5, 1.0, 2.0, 4.0]
    assert len(rsps.calls) == 5


def test_get_gives_up_after_the_retries(client: DmaClient, rsps: responses.RequestsMock,
                                        sleeps: list[float]) -> None:
    rsps.get(f"{BASE}/dma-supercluster", body=refused())
    error = raised(DmaNotReachable, client.supercluster)
    assert isinstance(error, DmaNotReachable) and error.reason == "refused"
    assert len(rsps.calls) == 3 and sleeps == [0.2, 0.4]


@pytest.mark.parametrize(("outcome", "reason"), [
    ({"status": 503}, "unavailable"),
    ({"body": requests.exceptions.ReadTimeout("read timed out")}, "timeout"),
    ({"body": dropped()}, "dropped")])
def test_apply_is_never_resent_once_it_may_have_arrived(
        client: DmaClient, rsps: responses.RequestsMock, sleeps: list[float],
        outcome: dict[str, Any], reason: str) -> None:
    rsps.post(f"{BASE}/installed-software/upgrade-package/apply", **outcome)
    error = raised(DmaNotReachable, client.apply_upgrade)
    assert isinstance(error, DmaNotReachable)
    assert error.reason == reason and error.request_sent
    assert len(rsps.calls) == 1 and sleeps == []


def test_delete_and_put_are_not_resent_after_503(client: DmaClient,
                                                 rsps: responses.RequestsMock) -> None:
    rsps.delete(f"{BASE}/dma-supercluster/denver", status=503)
    rsps.put(f"{BASE}/territories/t-1", status=503)
    assert raised(DmaNotReachable, lambda: client.remove_cluster("denver")).url.endswith("denver")
    raised(DmaNotReachable,
           lambda: client.update_territory(Territory("t-1", "", "a", "b", entity_tag="e")))
    assert len(rsps.calls) == 2


@pytest.mark.parametrize("failure", [
    refused, lambda: requests.exceptions.ConnectTimeout("connect timed out")])
def test_apply_is_retried_when_the_connection_failed_before_sending(
        client: DmaClient, rsps: responses.RequestsMock, sleeps: list[float],
        failure: Callable[[], Exception]) -> None:
    url = f"{BASE}/installed-software/upgrade-package/apply"
    rsps.post(url, body=failure())
    rsps.post(url, status=202, json=APPLY)
    assert client.apply_upgrade().operation_type == "UPGRADE"
    assert len(rsps.calls) == 2 and sleeps == [0.2]


def test_post_refused_every_time_gives_up_as_not_sent(
        client: DmaClient, rsps: responses.RequestsMock, sleeps: list[float]) -> None:
    rsps.post(f"{BASE}/dma-supercluster", body=refused())
    error = raised(DmaNotReachable,
                   lambda: client.join_supercluster(fqdn="x", port=8443, version="1"))
    assert isinstance(error, DmaNotReachable)
    assert error.reason == "refused" and not error.request_sent
    assert len(rsps.calls) == 3 and sleeps == [0.2, 0.4]


# --- can_log_in --------------------------------------------------------------------------------

@pytest.mark.parametrize(("outcome", "expected"), [
    ({"json": INSTALLED}, True), ({"status": 401}, False), ({"status": 503}, False),
    ({"body": refused()}, False)])
def test_can_log_in(client: DmaClient, rsps: responses.RequestsMock, sleeps: list[float],
                    outcome: dict[str, Any], expected: bool) -> None:
    rsps.get(f"{BASE}/installed-software", **outcome)
    assert client.can_log_in() is expected
    assert len(rsps.calls) == 1 and sleeps == []


def test_can_log_in_raises_on_a_real_error(client: DmaClient,
                                           rsps: responses.RequestsMock) -> None:
    rsps.get(f"{BASE}/installed-software", status=500)
    raised(DmaServerError, client.can_log_in)


# --- TLS settings ------------------------------------------------------------------------------

def test_verify_false_warns_once_and_is_passed_to_requests(
        make: Callable[..., DmaClient], rsps: responses.RequestsMock,
        caplog: pytest.LogCaptureFixture) -> None:
    client = make(verify=False)
    rsps.get(f"{BASE}/status", json=STATUS, match=[matchers.request_kwargs_matcher(
        {"verify": False})])
    client.status()
    client.status()
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1
    assert "dallas" in warnings[0].getMessage()
    assert "verification" in warnings[0].getMessage()


def test_verification_is_on_by_default_without_warning(
        client: DmaClient, caplog: pytest.LogCaptureFixture) -> None:
    assert client.verify is True
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_a_ca_bundle_path_is_passed_through(make: Callable[..., DmaClient],
                                            rsps: responses.RequestsMock,
                                            tmp_path: Any) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    client = make(verify=str(bundle))
    rsps.get(f"{BASE}/status", json=STATUS,
             match=[matchers.request_kwargs_matcher({"verify": str(bundle)})])
    client.status()


def test_a_missing_ca_bundle_is_refused_at_construction(make: Callable[..., DmaClient],
                                                        tmp_path: Any) -> None:
    with pytest.raises(ValueError, match="CA bundle"):
        make(verify=str(tmp_path / "nope.pem"))


def test_repr_has_no_secret(client: DmaClient) -> None:
    assert PASSWORD not in repr(client) and "dallas" in repr(client)


def test_a_poll_sends_each_read_once_and_the_client_keeps_its_retries(
        client: DmaClient, rsps: responses.RequestsMock, sleeps: list[float]) -> None:
    # A restarting cluster: the step polls again at its interval, so no retry with sleeps here.
    rsps.get(f"{BASE}/installed-software", body=refused())
    poll = client.single_attempt()
    error = raised(DmaNotReachable, poll.installed_software)
    assert isinstance(error, DmaNotReachable) and error.reason == "refused"
    assert len(rsps.calls) == 1 and sleeps == []
    raised(DmaNotReachable, client.installed_software)  # outside a poll: retried as before
    assert len(rsps.calls) == 4 and sleeps == [0.2, 0.4]
