"""What a step handler returns: a decision the worker persists, never a database side effect."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

OutcomeKind = Literal["done", "wait", "block", "escalate", "fail", "skip"]


@dataclass
class Outcome:
    """The result of one visit to a step.

    `wait` re-visits the step after `wait_s` (0 = at once, used as a checkpoint: the new `phase`
    and `data` are committed before the next visit acts). `block` needs an operator (resume);
    `escalate` stops the run with a vendor condition; `fail` stops it with an error.
    """

    kind: OutcomeKind
    note: str = ""
    phase: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    wait_s: float | None = None
    condition: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    posts: list[dict[str, Any]] = field(default_factory=list)
    snapshot: list[dict[str, Any]] | None = None
    board_state: str | None = None

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
    def escalate(cls, condition: str, note: str, details: dict[str, Any], **kw: Any) -> Outcome:
        """Stop the run and ask for Polycom Global Services."""
        return cls("escalate", note, condition=condition, details=details, **kw)

    @classmethod
    def fail(cls, note: str, **kw: Any) -> Outcome:
        """Stop the run with an error an operator must look at."""
        return cls("fail", note, **kw)
