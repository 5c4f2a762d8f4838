"""A run's stored plan, parsed once per process (it never changes after submission)."""

from __future__ import annotations

import threading
from collections import OrderedDict

from bot.engine.planner import Plan, plan_from_json
from storage.models import Run

_CACHE_SIZE = 256
_cache: OrderedDict[tuple[int, str, tuple[str, ...]], Plan] = OrderedDict()
_lock = threading.Lock()


def plan_of(run: Run) -> Plan:
    """The run's plan; parsed from its JSON on first use, then kept (keyed by run and digest)."""
    # The checklist to acknowledge is set at submission from the configuration, beside the
    # digest of the facts: it is part of the key too.
    key = (run.id, run.plan_digest, tuple((run.plan or {}).get("acknowledge", ())))
    with _lock:
        plan = _cache.get(key)
        if plan is not None:
            _cache.move_to_end(key)
            return plan
    plan = plan_from_json(run.plan)
    with _lock:
        _cache[key] = plan
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return plan
