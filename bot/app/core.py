"""What every process shares: the database, the DMA clients, the flows and a worker."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from bot.clients import ClientFactory
from bot.clock import Clock
from bot.config import Environment, Settings
from bot.dma.client import DmaClient
from bot.services import ServiceError, Services
from bot.worker.runner import Progress, Worker
from storage.db import make_engine, make_session_factory, upgrade_database


@dataclass(frozen=True)
class Core:
    """The settings, database, clock, DMA clients and flows of one process."""

    settings: Settings
    sessions: sessionmaker[Session]
    clock: Clock
    clients: Callable[[str], DmaClient]
    services: Services


def open_database(url: str, *, migrate: bool = True) -> tuple[Engine, sessionmaker[Session]]:
    """Migrate the database at `url` (unless told not to) and open it."""
    if migrate:
        upgrade_database(url)
    engine = make_engine(url)
    return engine, make_session_factory(engine)


def dma_credentials(env: Environment) -> tuple[str, str]:
    """The DMA admin account from the environment; a clear error when it is missing."""
    if not env.dma_username or not env.dma_password:
        raise ServiceError("set DMA_USERNAME and DMA_PASSWORD (a DMA admin account)")
    return env.dma_username, env.dma_password.get_secret_value()


def dma_clients(settings: Settings, env: Environment) -> ClientFactory:
    """One DMA client per cluster of the inventory, with the environment's account."""
    username, password = dma_credentials(env)
    return ClientFactory(settings, username=username, password=password)


def build_core(settings: Settings, *, sessions: sessionmaker[Session], clock: Clock,
               clients: Callable[[str], DmaClient]) -> Core:
    """Put together what every process shares."""
    return Core(settings, sessions, clock, clients,
                Services(settings=settings, sessions=sessions, clock=clock, clients=clients))


def make_worker(core: Core, *, worker_id: str | None = None,
                progress: Progress | None = None) -> Worker:
    """A worker on the core's database and clients."""
    return Worker(session_factory=core.sessions, settings=core.settings, clock=core.clock,
                  clients=core.clients, worker_id=worker_id, progress=progress)


MAIN_WAKE_S = 0.25


def wait_until_stopped(stop: threading.Event) -> None:
    """Block the main thread until `stop` is set, waking it every MAIN_WAKE_S.

    A signal may be delivered to any thread; its Python handler runs only when the main thread
    executes Python code. A main thread blocked in one untimed wait would then never run it, and
    SIGTERM would go unnoticed (seen once under load: a stop that took over 8 s).
    """
    while not stop.wait(MAIN_WAKE_S):
        pass
