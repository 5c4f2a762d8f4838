"""The DMA simulator: clusters and superclusters of dma-api.md, over loopback HTTP or in process.

A product feature (rehearsals and the sandbox run on it) and the test double of every cluster.
Each cluster answers under `/<cluster>/api/rest/...`: on a loopback port once `start()`ed, and
always in this process through `session()`, a requests session whose adapter calls the same
dispatcher without a socket. State is computed lazily from the injected clock whenever a request
or an inspection arrives, and every virtual duration is divided by `speed`, so with a FakeClock a
test drives a whole upgrade without waiting. Admin endpoints under `/_sim/` (loopback only, not
logged) show the state and the request log and set faults.
"""

from __future__ import annotations

import ipaddress
import json
import threading
from collections.abc import Mapping, Sequence
from datetime import datetime
from types import MappingProxyType, TracebackType
from typing import Any
from urllib.parse import unquote, urlsplit

import requests

from bot.clock import Clock, SystemClock
from bot.dma.models import Territory
from bot.simulator.api import ApiRequest, ClusterApi, Reply, error, logged_body
from bot.simulator.http import HttpFrontEnd
from bot.simulator.kinds import (
    Fault,
    FaultKind,
    RequestRecord,
    SimCluster,
    SimSupercluster,
    SimTimings,
)
from bot.simulator.transport import InProcessAdapter
from bot.simulator.world import World

_EMPTY: Mapping[str, Any] = MappingProxyType({})
_CLUSTER_PREFIX = "/api/rest"
# The address of the in-process transport. A loopback address with the discard port: a request
# sent there without the simulator's session is refused at once and never leaves the machine
# (a host name would cost a DNS query first).
IN_PROCESS_URL = "http://127.0.0.1:9"


class DmaSimulator:
    """Simulated DMA clusters with the vendor's rules, restarts, faults and a request log."""

    def __init__(self, clusters: Sequence[SimCluster],
                 superclusters: Sequence[SimSupercluster] = (), *,
                 packages: Mapping[str, str] = _EMPTY, clock: Clock | None = None,
                 speed: float = 1.0, timings: SimTimings | None = None, username: str = "admin",
                 password: str = "admin", seed: int = 0, host: str = "127.0.0.1", port: int = 0,
                 faults: Mapping[str, Sequence[Fault]] = _EMPTY) -> None:
        self._clock: Clock = clock or SystemClock()
        self._world = World(clusters, superclusters, packages=packages,
                            timings=timings or SimTimings(), speed=speed, seed=seed)
        self._api = ClusterApi(self._world, username, password)
        self._lock = threading.RLock()
        self._log: list[RequestRecord] = []
        self._bind = (host, port)
        self._front: HttpFrontEnd | None = None
        self._stopped = False  # a stopped simulator refuses connections, in process too
        # The incremental invariant, when watched: territory -> why it may go unserved.
        self._watch: Mapping[str, str] | None = None
        self._unserved: set[str] = set()
        for name, cluster_faults in faults.items():
            for fault in cluster_faults:
                self.set_fault(name, fault)

    # --- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        """Start serving HTTP on a background thread (port 0 picks a free port)."""
        self._stopped = False
        if self._front is None:
            self._front = HttpFrontEnd(*self._bind, self.dispatch)

    def stop(self) -> None:
        """Stop serving and release the port; in-process requests are refused from now on."""
        self._stopped = True
        if self._front is not None:
            self._front.close()
            self._front = None

    def __enter__(self) -> DmaSimulator:
        self.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    @property
    def serving(self) -> bool:
        """True while the HTTP front end is started."""
        return self._front is not None

    @property
    def base_url(self) -> str:
        """Return `http://HOST:PORT` once started, else the in-process address."""
        if self._front is None:
            return IN_PROCESS_URL
        host, port = self._front.address
        return f"http://{host}:{port}"

    def url_for(self, cluster: str) -> str:
        """Return the base URL of one cluster's API (see `base_url`)."""
        self._world.cluster(cluster)
        return f"{self.base_url}/{cluster}{_CLUSTER_PREFIX}"

    def session(self) -> requests.Session:
        """Return a requests session that reaches the in-process address without a socket."""
        session = requests.Session()
        # A longer prefix than the "http://" a DmaClient mounts on it, so this adapter wins.
        session.mount(f"{IN_PROCESS_URL}/",
                      InProcessAdapter(self.dispatch, is_up=lambda: not self._stopped))
        return session

    # --- faults -------------------------------------------------------------------------------

    def set_fault(self, cluster: str, fault: Fault) -> None:
        """Inject a fault into one cluster, at start or while running."""
        with self._lock:
            self._world.advance(self._clock.now())  # what is due happens before the fault
            self._world.set_fault(self._world.cluster(cluster), fault)

    def set_estimate(self, cluster: str, minutes: float) -> None:
        """Make a cluster report this install estimate, a misbehaving DMA's NaN or -5 included."""
        with self._lock:
            self._world.cluster(cluster).estimate = minutes

    def clear_faults(self, cluster: str | None = None) -> None:
        """Remove the faults of one cluster, or of all; a hung install then comes back."""
        with self._lock:
            now = self._clock.now()
            self._world.advance(now)
            names = [cluster] if cluster is not None else list(self._world.clusters)
            for name in names:
                self._world.clear_faults(self._world.cluster(name), now)

    # --- inspection ---------------------------------------------------------------------------

    @property
    def requests(self) -> list[RequestRecord]:
        """Return a copy of the request log, oldest first."""
        with self._lock:
            return list(self._log)

    @property
    def breaches(self) -> list[str]:
        """Requests that broke the guide without a 409: installs with calls up, unserved areas."""
        with self._lock:
            return list(self._world.breaches)

    def count(self, method: str, path: str, cluster: str | None = None) -> int:
        """Count logged requests with this method and exact path (relative to /api/rest)."""
        return sum(1 for r in self.requests if r.method == method.upper() and r.path == path
                   and (cluster is None or r.cluster == cluster))

    def state(self) -> dict[str, Any]:
        """Return a JSON-able snapshot of every cluster and supercluster now."""
        with self._lock:
            now = self._clock.now()
            self._world.advance(now)
            return self._world.snapshot(now)

    def version_of(self, cluster: str) -> str:
        """Return the version a cluster runs now."""
        with self._lock:
            self._world.advance(self._clock.now())
            return self._world.cluster(cluster).version

    def members_of(self, cluster: str) -> list[str]:
        """Return the members of the cluster's supercluster (itself alone when stand-alone)."""
        with self._lock:
            self._world.advance(self._clock.now())
            return list(self._world.sc_of(self._world.cluster(cluster)).members)

    def territories_of(self, cluster: str) -> list[Territory]:
        """Return the territories that a GET on this cluster would show now."""
        with self._lock:
            now = self._clock.now()
            self._world.advance(now)
            return self._world.territories(self._world.sc_of(self._world.cluster(cluster)), now)

    # --- requests (from either transport) ------------------------------------------------------

    def dispatch(self, method: str, target: str, headers: Mapping[str, str], body: bytes,
                 client: str) -> Reply:
        """Answer one request; `target` is the path and query, header keys are lower case."""
        parts = urlsplit(target)
        if parts.path == "/_sim" or parts.path.startswith("/_sim/"):
            return self._admin(method, parts.path, body, client)
        cluster, sep, rest = parts.path.lstrip("/").partition("/")
        rest = "/" + rest
        if not sep or not (rest == _CLUSTER_PREFIX or rest.startswith(_CLUSTER_PREFIX + "/")):
            return error(404, "not a simulated cluster: use /<cluster>/api/rest/...")
        req = ApiRequest(unquote(cluster), method, rest[len(_CLUSTER_PREFIX):] or "/",
                         parts.query, headers, body)
        with self._lock:
            now = self._clock.now()
            self._world.advance(now)
            reply = self._api.answer(req, now)
            self._log.append(RequestRecord(now, req.cluster, method, req.path,
                                           reply.status if reply.answered else None,
                                           logged_body(req), parts.query))
            if self._watch is not None:
                self._check_service(now, f"{method} {req.cluster}{req.path}")
        return reply

    def watch_service(self, allowed: Mapping[str, str] | None = None) -> None:
        """Check on every request that each territory is served by a cluster in service.

        `allowed` names the territories the approved plan said would go unserved (and why);
        any other territory found unserved is recorded in `breaches`, once per gap.
        """
        with self._lock:
            self._watch = dict(allowed or {})
            now = self._clock.now()
            self._world.advance(now)
            self._check_service(now, "start of watch")

    def _check_service(self, now: datetime, after: str) -> None:
        assert self._watch is not None
        gaps = self._world.unserved(now) - set(self._watch)
        for tid in sorted(gaps - self._unserved):
            self._world.breaches.append(f"{now.isoformat()} after {after}: territory {tid} is "
                                        "served by no cluster in service")
        self._unserved = gaps

    def _admin(self, method: str, path: str, body: bytes, client: str) -> Reply:
        if not ipaddress.ip_address(client.removeprefix("::ffff:")).is_loopback:
            return error(403, "the simulator's admin endpoints answer on loopback only")
        if (method, path) == ("GET", "/_sim/state"):
            return Reply(200, self.state(), pretty=True)
        if (method, path) == ("GET", "/_sim/requests"):
            return Reply(200, [r.to_json() for r in self.requests], pretty=True)
        if (method, path) == ("POST", "/_sim/faults"):
            return self._admin_set_fault(body)
        if method == "DELETE" and (path == "/_sim/faults" or path.startswith("/_sim/faults/")):
            name = unquote(path.removeprefix("/_sim/faults").strip("/")) or None
            try:
                self.clear_faults(name)
            except KeyError as exc:
                return error(404, str(exc.args[0]))
            return Reply(200, {"cluster": name, "faults": []}, pretty=True)
        return error(404, f"no admin endpoint {method} {path}")

    def _admin_set_fault(self, body: bytes) -> Reply:
        try:
            data = json.loads(body or b"null")
            fields = {k: data[k] for k in ("factor", "probability", "mode", "minutes") if k in data}
            cluster, fault = str(data["cluster"]), Fault(FaultKind(data["kind"]), **fields)
        except (ValueError, KeyError, TypeError) as exc:
            kinds = ", ".join(k.value for k in FaultKind)
            return error(400, f"bad fault ({exc}): send {{\"cluster\": ..., \"kind\": ...}} with "
                         f"kind one of {kinds}")
        try:
            self.set_fault(cluster, fault)
        except KeyError as exc:
            return error(404, str(exc.args[0]))
        kinds = self.state()["clusters"][cluster]["faults"]
        return Reply(200, {"cluster": cluster, "faults": kinds}, pretty=True)


def serve(simulator: DmaSimulator, *, stop: threading.Event | None = None,
          ready: threading.Event | None = None) -> None:
    """Serve until Ctrl-C (or until `stop` is set), then stop; `ready` is set once serving."""
    stop = stop or threading.Event()
    simulator.start()
    if ready is not None:
        ready.set()
    try:
        while not stop.wait(0.5):  # a short wait keeps Ctrl-C responsive
            pass
    except KeyboardInterrupt:
        pass
    finally:
        simulator.stop()
