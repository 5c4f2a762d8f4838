"""What a step handler returns: a decision the worker persists, never a database side effect."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from bot.engine.verification import Report

OutcomeKind = Literal["done", "wait", "block", "escalate", "fail", "skip"]


@dataclass(frozen=True)
class Outcome:
    """The result of one visit to a step (a value: build a new one with `dataclasses.replace`).

    `wait` re-visits the step after `wait_s` (0 = at once, used as a checkpoint: the new `phase`
    and `data` are committed before the next visit acts). `block` needs an operator (resume);
    `escalate` stops the run with a vendor condition; `fail` stops it with an error. `data` is
    merged into the step's stored data (a None value removes a key); `reports` go to the run's
    thread as they are; `snapshot` is the territory record to keep.
    """

    kind: OutcomeKind
    note: str = ""
    phase: str | None = None
    data: Mapping[str, Any] = field(default_factory=dict)
    wait_s: float | None = None
    condition: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)
    reports: tuple[Report, ...] = ()
    snapshot: tuple[Mapping[str, Any], ...] | None = None

    def __post_init__(self) -> None:
        # Read-only views: a handler's dict can no longer change the decision behind its back.
        object.__setattr__(self, "data", MappingProxyType(dict(self.data)))
        object.__setattr__(self, "details", MappingProxyType(dict(self.details)))
        if self.snapshot is not None:
            object.__setattr__(self, "snapshot", tuple(self.snapshot))

    @classmethod
    def done(cls, note: str = "", **kw: Any) -> Outcome:
        """Finish the step."""
        return cls("done", note, **kw)

    @classmethod
    def wait(cls, seconds: float, note: str = "", **kw: Any) -> Outcome:
        """Come back after `seconds`."""
        return cls("wait", note, wait_s=seconds, **kw)

    @classmethod
    def checkpoint(cls, phase: str, note: str = "", **kw: Any) -> Outcome:
        """Commit a phase before acting on the cluster, then continue at once."""
        return cls("wait", note, phase=phase, wait_s=0.0, **kw)

    @classmethod
    def block(cls, note: str, **kw: Any) -> Outcome:
        """Stop until an operator resumes the run."""
        return cls("block", note, **kw)

    @classmethod
    def escalate(cls, condition: str, note: str, details: Mapping[str, Any],
                 **kw: Any) -> Outcome:
        """Stop the run and ask for Polycom Global Services."""
        return cls("escalate", note, condition=condition, details=details, **kw)

    @classmethod
    def fail(cls, note: str, **kw: Any) -> Outcome:
        """Stop the run with an error an operator must look at."""
        return cls("fail", note, **kw)
