"""Typed errors of the DMA client: 'not reachable yet' is kept apart from real errors."""

from __future__ import annotations


class DmaError(Exception):
    """Any failure talking to a DMA cluster."""

    def __init__(self, message: str, *, url: str = "", status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.url = url
        self.status = status

    def __str__(self) -> str:
        where = f" ({self.url})" if self.url else ""
        code = f"HTTP {self.status}: " if self.status is not None else ""
        return f"{code}{self.message}{where}"


class DmaNotReachable(DmaError):
    """The cluster is restarting or not up yet: refused, timed out, 503, or 401 while starting.

    Never a verdict on its own: the caller decides from elapsed time whether to escalate.
    `reason` is one of: refused, timeout, unavailable, unauthorized, dropped.
    """

    def __init__(self, message: str, *, reason: str, url: str = "", status: int | None = None,
                 request_sent: bool = False) -> None:
        super().__init__(message, url=url, status=status)
        self.reason = reason
        # True when a state-changing request may have reached the cluster: check, never resend.
        self.request_sent = request_sent


class DmaConflict(DmaError):
    """409: the cluster refused because of its state (a vendor rule was not followed)."""


class DmaStaleTag(DmaError):
    """412: the entity tag sent in If-Match is no longer current."""


class DmaNotFound(DmaError):
    """404: no such resource."""


class DmaRequestError(DmaError):
    """Another 4xx: the request itself was wrong."""


class DmaServerError(DmaError):
    """A 5xx other than 503: the cluster failed."""


class DmaBadResponse(DmaError):
    """The answer was not what dma-api.md describes (bad JSON, missing or mistyped field)."""
