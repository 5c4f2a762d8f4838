"""Client of the DMA REST API (dma-api.md) on requests: typed answers, typed errors, safe retries.

Retry policy: a GET is retried while the cluster is "not reachable yet". A POST, PUT or DELETE is
retried only when the connection failed before anything was sent; once it may have reached the
cluster, the error says so (`request_sent=True`) and the caller checks the cluster's state instead.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from bot import metrics
from bot.dma import journal, models
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
from bot.dma.models import (
    ClusterStatus,
    Compatibility,
    HaStatus,
    InstalledSoftware,
    OperationStatus,
    SuperclusterView,
    Territory,
)
from bot.dma.wire import basic_token, error_message, refused, root_detail

log = logging.getLogger(__name__)

T = TypeVar("T")

# Request bodies and parameters that models.py has no representation for (dma-api.md).
B_URL, B_SHA1 = "url", "sha1"
B_INITIAL_HOST, B_FQDN, B_PORT, B_DMA_VERSION = "initialHost", "fqdn", "port", "dmaVersion"
B_SERVICE_STATUS = "serviceStatus"
Q_DMA_VERSION = "dmaVersion"
SERVICE_STATUSES = frozenset({"IN_SERVICE", "BUSIED_OUT", "OUT_OF_SERVICE"})

RETRYABLE_REASONS = frozenset({"refused", "dropped", "timeout", "unavailable"})
_DROPPED = (requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError)
UNAVAILABLE_CODES = frozenset({502, 503, 504})
STATUS_ERRORS: dict[int, type[DmaError]] = {404: DmaNotFound, 409: DmaConflict, 412: DmaStaleTag}
UNAUTHORIZED_HINT = ("credentials refused: the cluster may still be starting after a restart, "
                     "or DMA_USERNAME/DMA_PASSWORD are wrong")
TLS_HINT = ("if the cluster's certificate is signed by a private CA, set ca_bundle for this "
            "cluster in the inventory to that CA's PEM file")


class DmaClient:
    """Talk to one DMA cluster's REST API through its management address."""

    def __init__(self, base_url: str, *, username: str, password: str, verify: bool | str = True,
                 timeout: float = 10.0, retries: int = 2, backoff: float = 0.2,
                 sleep: Callable[[float], None] = time.sleep,
                 session: requests.Session | None = None, name: str | None = None,
                 max_estimate_minutes: float = models.MAX_ESTIMATE_MINUTES) -> None:
        """Configure the client; nothing is sent until a method is called."""
        parts = urlsplit(base_url)
        # Messages here never echo base_url: it might carry credentials.
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("base_url must be an http:// or https:// URL with a host")
        if parts.username is not None or parts.password is not None:
            raise ValueError("base_url must not contain credentials; pass username and password")
        if parts.query or parts.fragment:
            raise ValueError("base_url must not have a query or fragment")
        self.name: str = name or parts.hostname
        self.base_url: str = base_url.rstrip("/")
        if isinstance(verify, str) and not os.path.isfile(verify):
            raise ValueError(f"CA bundle for DMA cluster {self.name} is not a file: {verify}")
        self.verify = verify
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self._sleep = sleep
        self.max_estimate_minutes = max_estimate_minutes
        token = basic_token(username, password)
        self._secrets = tuple(s for s in (password, token) if s)
        self._session = session or requests.Session()
        # Retries are decided here, per method; urllib3 must never resend a request on its own.
        # read=False keeps read timeouts distinguishable from connect failures in requests.
        adapter = HTTPAdapter(max_retries=Retry(total=0, read=False, redirect=False))
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)
        # What requests would otherwise work out again at every request, done once: the
        # proxy and CA bundle the environment names for this address (a running bot's
        # environment does not change), and the headers with the credentials. A hundred runs
        # polling their clusters spent more in that than in the requests themselves.
        self._send_options = self._session.merge_environment_settings(
            self.base_url + "/", {}, None, verify, None)
        self._headers = {**self._session.headers, "Authorization": f"Basic {token}"}
        if verify is False:
            log.warning("TLS certificate verification is OFF for DMA cluster %s (%s): "
                        "its identity is not checked", self.name, self.base_url)

    def single_attempt(self) -> DmaClient:
        """A twin of this client that sends each request once: for polls (the next is the retry)."""
        twin = copy.copy(self)
        twin.retries = 0
        return twin

    def __repr__(self) -> str:
        """Show the cluster, never the credentials."""
        return f"DmaClient(name={self.name!r}, base_url={self.base_url!r})"

    # --- installed software -------------------------------------------------------------------

    def installed_software(self) -> InstalledSoftware:
        """Return what runs, what is uploaded, the estimate and the history."""
        resp = self._request("GET", "/installed-software", media="installed-software")
        return self._parse(resp, "GET", "/installed-software", lambda data: (
            InstalledSoftware.from_json(data, max_estimate_minutes=self.max_estimate_minutes)))

    def upload_package_url(self, url: str, sha1: str | None) -> None:
        """Ask the cluster to fetch an upgrade package from a URL (it answers 202)."""
        body: dict[str, Any] = {B_URL: url}
        if sha1 is not None:
            body[B_SHA1] = sha1
        self._request("POST", "/installed-software/upgrade-package/url",
                      media="installed-software", body=body)

    def upload_package_file(self, data: bytes) -> None:
        """Upload an upgrade package file (it answers 201)."""
        self._request("POST", "/installed-software/upgrade-package",
                      media="installed-software", raw=data)

    def apply_upgrade(self) -> OperationStatus:
        """Install the uploaded package on every server; the cluster restarts."""
        path = "/installed-software/upgrade-package/apply"
        resp = self._request("POST", path, media="installed-software")
        return self._parse_accepted(resp, path, "UPGRADE")

    def rollback(self) -> OperationStatus:
        """Restore the rollback version; the cluster restarts."""
        path = "/installed-software/rollback"
        resp = self._request("POST", path, media="installed-software")
        return self._parse_accepted(resp, path, "ROLLBACK")

    def can_log_in(self) -> bool:
        """Return True when the cluster answers 200 with our credentials, False while it cannot."""
        try:
            # One attempt: the caller polls, so a retry here would only delay its answer.
            self._request("GET", "/installed-software", media="installed-software", retries=0)
        except DmaNotReachable:
            return False
        return True

    # --- high availability and status ----------------------------------------------------------

    def ha_status(self) -> HaStatus:
        """Return the servers of the cluster and the state of their private link."""
        resp = self._request("GET", "/high-availability/status", media="high-availability")
        return self._parse(resp, "GET", "/high-availability/status", HaStatus.from_json)

    def status(self) -> ClusterStatus:
        """Return active calls, registrations and alerts."""
        resp = self._request("GET", models.PATH_STATUS, media="status")
        return self._parse(resp, "GET", models.PATH_STATUS, ClusterStatus.from_json)

    # --- supercluster --------------------------------------------------------------------------

    def supercluster(self) -> SuperclusterView:
        """Return the supercluster's members as this cluster sees them."""
        resp = self._request("GET", "/dma-supercluster", media="supercluster")
        return self._parse(resp, "GET", "/dma-supercluster", SuperclusterView.from_json)

    def check_compatibility(self, version: str) -> Compatibility:
        """Ask whether a cluster running `version` may join this supercluster."""
        resp = self._request("GET", models.PATH_COMPATIBILITY, media="supercluster",
                             params={Q_DMA_VERSION: version})
        return self._parse(resp, "GET", models.PATH_COMPATIBILITY, Compatibility.from_json)

    def join_supercluster(self, *, fqdn: str, port: int, version: str) -> None:
        """Join this cluster to the supercluster of `fqdn` (this cluster's data is replaced)."""
        body = {B_INITIAL_HOST: [{B_FQDN: fqdn, B_PORT: port}], B_DMA_VERSION: version}
        self._request("POST", "/dma-supercluster", media="supercluster", body=body)

    def operation_status(self) -> OperationStatus:
        """Return the progress of the running or last supercluster operation."""
        resp = self._request("GET", models.PATH_OPERATION_STATUS, media="supercluster-operation")
        return self._parse(resp, "GET", models.PATH_OPERATION_STATUS, OperationStatus.from_json)

    def remove_cluster(self, cluster_id: str) -> None:
        """Make the named cluster leave the supercluster (it restarts stand-alone)."""
        self._request("DELETE", f"/dma-supercluster/{_seg(cluster_id)}", media="supercluster")

    def set_service_status(self, cluster_id: str, status: str) -> None:
        """Put the named cluster IN_SERVICE, BUSIED_OUT or OUT_OF_SERVICE."""
        if status not in SERVICE_STATUSES:
            raise ValueError(f"service status must be one of {sorted(SERVICE_STATUSES)}, "
                             f"not {status!r}")
        self._request("POST", f"/dma-supercluster/{_seg(cluster_id)}/set-service-status",
                      media="supercluster", body={B_SERVICE_STATUS: status})

    # --- territories ---------------------------------------------------------------------------

    def territories(self) -> tuple[Territory, ...]:
        """Return every territory of the supercluster."""
        resp = self._request("GET", "/territories", media="territory")
        return self._parse(resp, "GET", "/territories", models.parse_territories)

    def update_territory(self, territory: Territory) -> Territory:
        """Replace a territory guarded by its entity tag; return the new representation."""
        if not territory.entity_tag:
            raise ValueError(f"territory {territory.territory_id} has no entity tag; read it first")
        path = f"/territories/{_seg(territory.territory_id)}"
        resp = self._request("PUT", path, media="territory", body=territory.to_json(),
                             if_match=territory.entity_tag)
        updated = self._parse(resp, "PUT", path, Territory.from_json)
        etag = resp.headers.get("ETag")
        return replace(updated, entity_tag=etag) if updated.entity_tag is None and etag else updated

    # --- transport -----------------------------------------------------------------------------

    def _request(self, method: str, path: str, *, media: str,
                 params: Mapping[str, str] | None = None, body: Any = None,
                 raw: bytes | None = None, if_match: str | None = None,
                 retries: int | None = None) -> requests.Response:
        """Send with the retry policy of the module docstring; return a 2xx response."""
        allowed = self.retries if retries is None else retries
        attempt = 0
        while True:
            try:
                return self._send(method, path, media=media, params=params, body=body, raw=raw,
                                  if_match=if_match)
            except DmaNotReachable as exc:
                if attempt >= allowed or not _may_retry(exc, method):
                    raise
                delay = self.backoff * 2 ** attempt
                attempt += 1
                log.debug("DMA %s: %s %s not reachable (%s); retry %d/%d in %.2fs",
                          self.name, method, path, exc.reason, attempt, allowed, delay)
                self._sleep(delay)

    def _send(self, method: str, path: str, *, media: str, params: Mapping[str, str] | None,
              body: Any, raw: bytes | None, if_match: str | None) -> requests.Response:
        """Send once and map the outcome to a response or a DmaError."""
        url = self.base_url + path
        accept = models.MEDIA_TYPES[media]
        headers = {**self._headers, "Accept": accept}
        data: bytes | None = None
        if body is not None:
            headers["Content-Type"] = accept
            data = json.dumps(body).encode()
        elif raw is not None:
            headers["Content-Type"] = "application/octet-stream"
            data = raw
        if if_match is not None:
            headers["If-Match"] = if_match
        started = time.monotonic()
        try:
            prepared = requests.Request(method, url, params=params, data=data, headers=headers,
                                        cookies=self._session.cookies).prepare()
            resp = self._session.send(prepared, timeout=(self.timeout, self.timeout),
                                      allow_redirects=False, **self._send_options)
        except requests.exceptions.RequestException as exc:
            error = self._transport_error(exc, method, path, url)
            took = time.monotonic() - started
            log.debug("DMA %s: %s %s -> %s after %.3fs", self.name, method, path,
                      type(exc).__name__, took)
            metrics.dma_request(self.name, method,
                                error.reason if isinstance(error, DmaNotReachable) else "error",
                                took)
            journal.note(cluster=self.name, method=method, path=path, status=None,
                         elapsed_s=took, request=body if raw is None else raw, response=None,
                         error=type(exc).__name__, secrets=self._secrets)
            raise error from exc
        took = time.monotonic() - started
        log.debug("DMA %s: %s %s -> %d in %.3fs", self.name, method, path, resp.status_code,
                  took)
        metrics.dma_request(self.name, method, _outcome(resp.status_code), took)
        journal.note(cluster=self.name, method=method, path=path, status=resp.status_code,
                     elapsed_s=took, request=body if raw is None else raw, response=resp.text,
                     secrets=self._secrets)
        self._check(resp, method, path, url)
        return resp

    def _transport_error(self, exc: requests.exceptions.RequestException, method: str, path: str,
                         url: str) -> DmaError:
        """Map a requests exception to a DmaError that says whether the request went out."""
        where = f"DMA {self.name}: {method} {path}"
        detail = self._scrub(root_detail(exc))
        sent = method != "GET"  # a GET changes nothing, so "may have been sent" never matters
        if isinstance(exc, requests.exceptions.SSLError):
            # Not "not reachable": waiting will not fix a certificate the bot cannot trust.
            what = ("TLS certificate verification failed" if "verif" in detail.lower()
                    else "TLS handshake failed (is this an https port?)")
            return DmaError(f"{where}: {what} ({detail}); {TLS_HINT}", url=url)
        if isinstance(exc, requests.exceptions.ConnectTimeout):
            return DmaNotReachable(f"{where}: connecting timed out after {self.timeout:g}s",
                                   reason="timeout", url=url)
        if isinstance(exc, requests.exceptions.Timeout):
            return DmaNotReachable(f"{where}: no answer within {self.timeout:g}s",
                                   reason="timeout", url=url, request_sent=sent)
        if isinstance(exc, requests.exceptions.ConnectionError) and refused(exc):
            return DmaNotReachable(f"{where}: connection refused ({detail})",
                                   reason="refused", url=url)
        if isinstance(exc, _DROPPED):
            return DmaNotReachable(f"{where}: connection dropped ({detail})",
                                   reason="dropped", url=url, request_sent=sent)
        return DmaError(f"{where}: request failed ({type(exc).__name__}: {detail})", url=url)

    def _check(self, resp: requests.Response, method: str, path: str, url: str) -> None:
        """Raise the DmaError that a non-2xx status means."""
        code = resp.status_code
        if 200 <= code < 300:
            return
        where = f"DMA {self.name}: {method} {path}"
        message = error_message(resp)
        said = f": {self._scrub(message)}" if message else ""
        if code == 401:
            raise DmaNotReachable(f"{where}: {UNAUTHORIZED_HINT}{said}", reason="unauthorized",
                                  url=url, status=code)
        if code in UNAVAILABLE_CODES:
            raise DmaNotReachable(f"{where}: service unavailable{said}", reason="unavailable",
                                  url=url, status=code, request_sent=method != "GET")
        if 300 <= code < 400:
            target = self._scrub(resp.headers.get("Location", "?"))
            raise DmaBadResponse(f"{where}: redirected to {target}; set api_url to the final "
                                 f"address", url=url, status=code)
        kind = STATUS_ERRORS.get(code, DmaRequestError if code < 500 else DmaServerError)
        raise kind(f"{where}: {resp.reason or 'error'}{said}", url=url, status=code)

    def _parse(self, resp: requests.Response, method: str, path: str,
               parse: Callable[[Any], T]) -> T:
        """Decode a JSON answer with a models parser; say which cluster and call it came from."""
        where = f"DMA {self.name}: {method} {path}"
        try:
            data = resp.json()
        except ValueError as exc:
            raise DmaBadResponse(f"{where}: the answer is not JSON ({exc})", url=resp.url,
                                 status=resp.status_code) from exc
        try:
            return parse(data)
        except DmaBadResponse as exc:
            raise DmaBadResponse(f"{where}: {self._scrub(exc.message)}", url=resp.url,
                                 status=resp.status_code) from exc

    def _parse_accepted(self, resp: requests.Response, path: str, kind: str) -> OperationStatus:
        """Parse the 202 body of apply or rollback; an empty body still means accepted."""
        if not resp.content.strip():
            return OperationStatus(operation_type=kind, percentage_complete=0)
        try:
            return self._parse(resp, "POST", path, OperationStatus.from_json)
        except DmaBadResponse as exc:
            # The operation started; the caller must not read this as "refused".
            raise DmaBadResponse(f"{exc.message} (the cluster accepted the request)",
                                 url=exc.url, status=exc.status) from exc

    def _scrub(self, text: str) -> str:
        """Remove credentials from text that came from elsewhere (a server, an exception)."""
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text


_OUTCOMES = {401: "unauthorized", 404: "not_found", 409: "conflict", 412: "stale_tag"}


def _outcome(code: int) -> str:
    """The metrics' word for an HTTP status from a cluster."""
    if 200 <= code < 300:
        return "ok"
    if code in UNAVAILABLE_CODES:
        return "unavailable"
    if code in _OUTCOMES:
        return _OUTCOMES[code]
    return "redirect" if code < 400 else "client_error" if code < 500 else "server_error"


def _seg(value: str) -> str:
    """Quote one path segment (ids may hold '/', '?' or spaces)."""
    return quote(value, safe="")


def _may_retry(exc: DmaNotReachable, method: str) -> bool:
    """Retry a GET while not reachable; anything else only if it certainly was not sent."""
    if exc.reason not in RETRYABLE_REASONS:
        return False
    return method == "GET" or not exc.request_sent


