"""The service impact added to an escalation: what the network serves at that moment."""

from __future__ import annotations

import logging
from dataclasses import replace

from bot.runs.outcome import Outcome
from bot.runs.readings import impact_now
from bot.worker.context import StepContext

log = logging.getLogger(__name__)


def with_impact(ctx: StepContext, outcome: Outcome) -> Outcome:
    """Add the impact lines (out of service, stand-alone, unmanaged territories) to its details."""
    names = dict.fromkeys([*(n for n, _ in ctx.plan.from_versions), *ctx.plan.order])
    servers = {n: ctx.inventory[n].servers if n in ctx.inventory else 2 for n in names}
    try:
        impact = impact_now(ctx.client_for, servers)
    except Exception:  # the escalation itself must never be lost to this extra read
        log.exception("could not read the service impact for %s", ctx.key)
        return outcome
    return replace(outcome, details={**outcome.details, "impact": list(impact.lines())})
