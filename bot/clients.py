"""Build one DMA client per cluster from the settings; credentials come from the environment."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping

import requests

from bot.config import Settings
from bot.dma.client import DmaClient


class ClientFactory:
    """Hands out one DmaClient per cluster (kept, so its HTTP session is reused)."""

    def __init__(self, settings: Settings, *, username: str, password: str,
                 urls: Mapping[str, str] | None = None, retries: int | None = None,
                 backoff_s: float | None = None,
                 session_factory: Callable[[], requests.Session] | None = None) -> None:
        """Configure; `session_factory` gives each client its session (e.g. the simulator's)."""
        self._settings = settings
        self._username = username
        self._password = password
        self._urls = dict(urls or {})
        self._retries = retries
        self._backoff = backoff_s
        self._session_factory = session_factory
        self._clients: dict[str, DmaClient] = {}
        self._lock = threading.Lock()

    def __call__(self, cluster: str) -> DmaClient:
        """Return the client of a cluster of the inventory."""
        with self._lock:
            client = self._clients.get(cluster)
            if client is None:
                client = self._clients[cluster] = self._make(cluster)
            return client

    def _make(self, cluster: str) -> DmaClient:
        spec = self._settings.cluster(cluster)
        if spec is None:
            raise KeyError(f"no cluster named {cluster!r} in the inventory")
        dma = self._settings.dma
        return DmaClient(self._urls.get(cluster, spec.api_url), username=self._username,
                         password=self._password, verify=self._settings.verify_for(spec),
                         timeout=dma.timeout.total_seconds(),
                         retries=dma.retries if self._retries is None else self._retries,
                         backoff=(dma.backoff.total_seconds() if self._backoff is None
                                  else self._backoff), name=cluster,
                         max_estimate_minutes=dma.max_install_estimate.total_seconds() / 60,
                         session=self._session_factory() if self._session_factory else None)
