"""What every flow holds, how a flow finds the run it was asked about, and its errors."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from bot.clock import Clock
from bot.config import Settings
from bot.dma.client import DmaClient
from bot.engine.errors import UserError
from storage import repo
from storage.models import Run


class ServiceError(UserError):
    """A request that cannot be done, with a message for the person who asked."""


class NoSuchRun(ServiceError):
    """A run reference that names no run."""

    def __init__(self, ref: str | int) -> None:
        shown = str(ref) if len(str(ref)) <= 12 else f"{str(ref)[:12]}…"  # never echo a novel
        super().__init__(f"no run {shown}; runs are named R1, R2, … (`/upgrade history`)")


@dataclass(frozen=True)
class Flow:
    """The settings, database, clock and cluster clients a flow works with."""

    settings: Settings
    sessions: sessionmaker[Session]
    clock: Clock
    clients: Callable[[str], DmaClient]

    @staticmethod
    def find(session: Session, ref: str | int) -> Run:
        """The run named by `ref`; NoSuchRun when there is none."""
        run = repo.get_run(session=session, ref=ref)
        if run is None:
            raise NoSuchRun(ref)
        return run

    @staticmethod
    def lock(session: Session, ref: str | int) -> Run:
        """The run, locked: approvals and controls of one run happen one after the other."""
        run = repo.lock_run(session=session, ref=ref)
        if run is None:
            raise NoSuchRun(ref)
        return run
