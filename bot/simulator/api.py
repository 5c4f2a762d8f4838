"""The simulated DMA's REST surface: restarts, flaky faults, Basic auth, and routing to the rules.

Independent of the transport (the HTTP server, or the in-process requests adapter): a request
comes in as an `ApiRequest` and leaves as a `Reply` (or as `DROP`, a connection closed without an
answer, or `HANG`, no answer at all until the caller gives up).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, unquote

from bot.dma.models import (
    MEDIA_TYPES,
    PATH_COMPATIBILITY,
    PATH_OPERATION_STATUS,
    PATH_STATUS,
    ClusterStatus,
    Compatibility,
    Territory,
)
from bot.simulator import commands as cmd
from bot.simulator.kinds import FaultKind
from bot.simulator.state import IN_SERVICE, ClusterState, Refused
from bot.simulator.world import World

JSON_TYPE = re.compile(r"^application/(json|vnd\.plcm\.[\w.-]+\+json)$")
OCTET_TYPE = "application/octet-stream"
_SOFTWARE, _SC = MEDIA_TYPES["installed-software"], MEDIA_TYPES["supercluster"]
_SC_OP, _TERRITORY = MEDIA_TYPES["supercluster-operation"], MEDIA_TYPES["territory"]


@dataclass(frozen=True)
class ApiRequest:
    """One request to a cluster, with its path relative to the cluster's /api/rest."""

    cluster: str
    method: str
    path: str
    query: str
    headers: Mapping[str, str]  # keys in lower case
    body: bytes

    @property
    def content_type(self) -> str:
        """Return the media type without parameters, in lower case."""
        return self.headers.get("content-type", "").split(";")[0].strip().lower()


@dataclass(frozen=True)
class Reply:
    """An answer: status, JSON body, media type and headers; or a dropped or silent connection."""

    status: int
    body: Any = None
    media: str = "application/json"
    etag: str | None = None
    drop: bool = False
    hang: bool = False
    headers: tuple[tuple[str, str], ...] = ()
    pretty: bool = False  # indented, for people reading the admin endpoints

    @property
    def answered(self) -> bool:
        """True when the caller receives a status line (neither dropped nor left hanging)."""
        return not (self.drop or self.hang)

    def payload(self) -> bytes:
        """Return the body as sent on the wire."""
        if self.body is None:
            return b""
        return (json.dumps(self.body, indent=2, ensure_ascii=False) + "\n").encode() \
            if self.pretty else json.dumps(self.body).encode()

    def wire_headers(self) -> list[tuple[str, str]]:
        """Return the headers every transport sends with this answer."""
        data = self.payload()
        etag = [("ETag", f'"{self.etag}"')] if self.etag else []
        return [("Content-Type", self.media), ("Content-Length", str(len(data))), *etag,
                *self.headers]


DROP = Reply(0, drop=True)
HANG = Reply(0, hang=True)
_CHALLENGE = (("WWW-Authenticate", 'Basic realm="DMA"'),)
_UNANSWERED = {"drop": DROP, "hang": HANG}


def error(status: int, message: str, headers: tuple[tuple[str, str], ...] = ()) -> Reply:
    """Return a plcm-error answer."""
    return Reply(status, {"status": status, "message": message}, MEDIA_TYPES["error"],
                 headers=headers)


def logged_body(req: ApiRequest) -> Any:
    """Return the request body as the log keeps it: parsed JSON, or a note of its size."""
    if not req.body:
        return None
    if JSON_TYPE.match(req.content_type) or not req.content_type:
        try:
            return json.loads(req.body)
        except ValueError:
            pass
    return f"<{len(req.body)} bytes of {req.content_type or 'unknown type'}>"


@dataclass(frozen=True)
class _Call:
    c: ClusterState
    req: ApiRequest
    user: str
    now: datetime
    ident: str  # the {id} of the path, if any


class ClusterApi:
    """Answer requests to simulated clusters the way dma-api.md says a DMA does."""

    def __init__(self, world: World, username: str, password: str) -> None:
        self.world = world
        self._username = username
        self._password = password

    def answer(self, req: ApiRequest, now: datetime) -> Reply:
        """Answer one request at virtual time `now` (the caller holds the lock)."""
        c = self.world.clusters.get(req.cluster)
        if c is None:
            return error(404, f"no cluster named {req.cluster} is simulated here")
        gate = self.world.gate(c, now)
        if gate == "drop":
            return DROP
        if gate == "503":
            return error(503, f"{c.name} is restarting: its services are unavailable")
        flaky = self._flaky(c)
        if flaky in _UNANSWERED:
            return _UNANSWERED[flaky]
        if flaky == "503":
            return error(503, "the service is temporarily unavailable")
        if gate == "401":
            return error(401, "the services are starting: cannot log in yet", _CHALLENGE)
        user = self._user(req)
        if user is None:
            return error(401, "authentication required: missing or wrong credentials",
                         _CHALLENGE)
        reply = self._route(_Call(c, req, user, now, ""))
        # Dropped (or left hanging) after the work was done: the caller cannot know whether it
        # happened.
        if flaky is not None and flaky.endswith("-after"):
            return _UNANSWERED[flaky.removesuffix("-after")]
        return reply

    def _flaky(self, c: ClusterState) -> str | None:
        fault = c.fault(FaultKind.FLAKY)
        if fault is None or c.rng.random() >= fault.probability:
            return None
        mode = c.rng.choice(("503", "drop")) if fault.mode == "both" else fault.mode
        if mode == "503":
            return "503"
        return f"{mode}-after" if c.rng.random() < 0.5 else mode

    def _user(self, req: ApiRequest) -> str | None:
        scheme, _, encoded = req.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            user, _, password = base64.b64decode(encoded.strip()).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        ok = (hmac.compare_digest(user.encode(), self._username.encode())
              & hmac.compare_digest(password.encode(), self._password.encode()))
        return user if ok else None

    def _route(self, call: _Call) -> Reply:
        path = call.req.path.rstrip("/") or "/"
        allowed = []
        for method, pattern, handler in _ROUTES:
            match = pattern.fullmatch(path)
            if match is None:
                continue
            if method != call.req.method:
                allowed.append(method)
                continue
            ident = unquote(match.group("id")) if "id" in match.groupdict() else ""
            try:
                return handler(self, _Call(call.c, call.req, call.user, call.now, ident))
            except Refused as refused:
                return error(refused.status, refused.message)
        if allowed:
            return error(405, f"{call.req.method} is not allowed on {path} "
                         f"(allowed: {', '.join(allowed)})")
        return error(404, f"no resource {path}")

    # --- handlers -----------------------------------------------------------------------------

    def _json(self, req: ApiRequest) -> Any:
        if req.content_type and not JSON_TYPE.match(req.content_type):
            raise Refused(415, f"unsupported content type {req.content_type}: send "
                          "application/json or application/vnd.plcm.<name>+json")
        try:
            return json.loads(req.body or b"null")
        except ValueError:
            raise Refused(400, "the body is not valid JSON") from None

    def get_software(self, call: _Call) -> Reply:
        """GET /installed-software."""
        software = self.world.installed_software(call.c, call.now)
        return Reply(200, software.to_json(), _SOFTWARE, software.entity_tag)

    def upload_url(self, call: _Call) -> Reply:
        """POST /installed-software/upgrade-package/url."""
        op = cmd.upload_url(self.world, call.c, self._json(call.req), call.now)
        return Reply(202, op.to_json(), _SOFTWARE)

    def upload_file(self, call: _Call) -> Reply:
        """POST /installed-software/upgrade-package."""
        if call.req.content_type not in ("", OCTET_TYPE):
            raise Refused(415, f"upload the package file as {OCTET_TYPE}, "
                          f"not {call.req.content_type}")
        cmd.upload_bytes(call.c, call.req.body, call.now)
        software = self.world.installed_software(call.c, call.now)
        return Reply(201, software.to_json(), _SOFTWARE, software.entity_tag)

    def apply(self, call: _Call) -> Reply:
        """POST /installed-software/upgrade-package/apply."""
        op = cmd.apply_package(self.world, call.c, call.user, call.now)
        return Reply(202, op.to_json(), _SOFTWARE)

    def rollback(self, call: _Call) -> Reply:
        """POST /installed-software/rollback."""
        return Reply(202, cmd.rollback(self.world, call.c, call.user, call.now).to_json(),
                     _SOFTWARE)

    def ha_status(self, call: _Call) -> Reply:
        """GET /high-availability/status."""
        return Reply(200, self.world.ha_status(call.c).to_json(),
                     MEDIA_TYPES["high-availability"])

    def supercluster(self, call: _Call) -> Reply:
        """GET /dma-supercluster."""
        return Reply(200, self.world.supercluster_view(call.c, call.now).to_json(), _SC)

    def join(self, call: _Call) -> Reply:
        """POST /dma-supercluster."""
        op = cmd.join(self.world, call.c, self._json(call.req), call.now)
        return Reply(202, op.to_json(), _SC_OP)

    def compatibility(self, call: _Call) -> Reply:
        """GET /dma-supercluster/check-compatibility?dmaVersion=."""
        version = parse_qs(call.req.query).get("dmaVersion", [None])[0]
        answer = cmd.check_compatibility(call.c, version)
        members = self.world.sc_of(call.c).members  # any member answers for the supercluster
        if any(self.world.clusters[m].fault(FaultKind.SAYS_INCOMPATIBLE) for m in members):
            answer = Compatibility(False, f"{version} may not join this supercluster "
                                   "(the DMA's own rule, simulated)")
        return Reply(200, answer.to_json(), _SC)

    def operation_status(self, call: _Call) -> Reply:
        """GET /dma-supercluster/operation-status."""
        return Reply(200, cmd.operation_status(call.c, call.now).to_json(), _SC_OP)

    def leave(self, call: _Call) -> Reply:
        """DELETE /dma-supercluster/{clusterId}."""
        return Reply(202, cmd.leave(self.world, call.c, call.ident, call.now).to_json(), _SC_OP)

    def set_service(self, call: _Call) -> Reply:
        """POST /dma-supercluster/{clusterId}/set-service-status."""
        member = cmd.set_service(self.world, call.c, call.ident, self._json(call.req), call.now)
        return Reply(200, member.to_json(), _SC)

    def territories(self, call: _Call) -> Reply:
        """GET /territories."""
        shown = self.world.territories(self.world.sc_of(call.c), call.now)
        tag = hashlib.sha1("/".join(t.entity_tag or "" for t in shown).encode()).hexdigest()
        return Reply(200, {"territories": [t.to_json() for t in shown]}, _TERRITORY, tag[:12])

    def territory(self, call: _Call) -> Reply:
        """GET /territories/{territoryIdentifier}."""
        found = [t for t in self.world.territories(self.world.sc_of(call.c), call.now)
                 if t.territory_id == call.ident]
        if not found:
            raise Refused(404, f"no territory {call.ident} in this supercluster")
        return _territory_reply(found[0])

    def put_territory(self, call: _Call) -> Reply:
        """PUT /territories/{territoryIdentifier} with If-Match."""
        changed = cmd.put_territory(self.world, call.c, call.ident, self._json(call.req),
                                    call.req.headers.get("if-match"), call.now)
        return _territory_reply(changed)

    def status(self, call: _Call) -> Reply:
        """GET /status."""
        c = call.c
        alerts = self.world.health_alerts(c)
        if c.fault(FaultKind.ALERT):
            alerts.append(f"{c.name}: MAJOR: database replication is behind (simulated alert)")
        if c.service != IN_SERVICE:
            alerts.append(f"{c.name} is {c.service}")
        body = ClusterStatus(self.world.calls(c, call.now), c.registrations, tuple(alerts))
        return Reply(200, body.to_json(), MEDIA_TYPES["status"])


def _territory_reply(t: Territory) -> Reply:
    return Reply(200, t.to_json(), _TERRITORY, t.entity_tag)


_Handler = Callable[[ClusterApi, _Call], Reply]
_ROUTES: list[tuple[str, re.Pattern[str], _Handler]] = [
    (method, re.compile(pattern), handler) for method, pattern, handler in [
        ("GET", r"/installed-software", ClusterApi.get_software),
        ("POST", r"/installed-software/upgrade-package/url", ClusterApi.upload_url),
        ("POST", r"/installed-software/upgrade-package", ClusterApi.upload_file),
        ("POST", r"/installed-software/upgrade-package/apply", ClusterApi.apply),
        ("POST", r"/installed-software/rollback", ClusterApi.rollback),
        ("GET", r"/high-availability/status", ClusterApi.ha_status),
        ("GET", r"/dma-supercluster", ClusterApi.supercluster),
        ("POST", r"/dma-supercluster", ClusterApi.join),
        ("GET", re.escape(PATH_COMPATIBILITY), ClusterApi.compatibility),
        ("GET", re.escape(PATH_OPERATION_STATUS), ClusterApi.operation_status),
        ("DELETE", r"/dma-supercluster/(?P<id>[^/]+)", ClusterApi.leave),
        ("POST", r"/dma-supercluster/(?P<id>[^/]+)/set-service-status", ClusterApi.set_service),
        ("GET", r"/territories", ClusterApi.territories),
        ("GET", r"/territories/(?P<id>[^/]+)", ClusterApi.territory),
        ("PUT", r"/territories/(?P<id>[^/]+)", ClusterApi.put_territory),
        ("GET", re.escape(PATH_STATUS), ClusterApi.status),
    ]
]
