"""The step handlers, looked up by the step kind stored in the database (never pickled)."""

from __future__ import annotations

from collections.abc import Callable

from bot.engine.planner import StepKind
from bot.runs.outcome import Outcome
from bot.worker.context import StepContext
from bot.worker.steps import install, rollback, service, supercluster, territories

Handler = Callable[[StepContext], Outcome]

# The steps that read the territories recorded at the start (loaded for these only).
NEEDS_SNAPSHOT = frozenset({StepKind.MOVE_TERRITORIES, StepKind.RESTORE_TERRITORIES})
# The kinds that read other steps' data at (nearly) every visit: read with the claim. Others
# read it lazily (an escalation's evidence packet, say).
NEEDS_STEP_DATA = frozenset({StepKind.INSTALL, StepKind.WAIT_LOGIN, StepKind.VERIFY})

HANDLERS: dict[StepKind, Handler] = {
    StepKind.PREFLIGHT: supercluster.preflight,
    StepKind.UPLOAD: install.upload,
    StepKind.RECORD_TERRITORIES: territories.record_territories,
    StepKind.REASSIGN_TERRITORIES: territories.reassign_territories,
    StepKind.BUSY_OUT: service.busy_out,
    StepKind.DRAIN: service.drain,
    StepKind.OUT_OF_SERVICE: service.out_of_service,
    StepKind.REMOVE: service.remove,
    StepKind.INSTALL: install.install,
    StepKind.WAIT_LOGIN: install.wait_login,
    StepKind.VERIFY: install.verify,
    StepKind.LICENCE_KEYS: install.licence_keys,
    StepKind.JOIN: supercluster.join,
    StepKind.MOVE_TERRITORIES: territories.move_territories,
    StepKind.RESTORE_TERRITORIES: territories.restore_territories,
    StepKind.RETURN_TO_SERVICE: service.return_to_service,
    StepKind.CHECK_TERRITORIES: territories.check_territories,
    StepKind.FINAL_CHECK: supercluster.final_check,
    StepKind.PEOPLE_WORK: service.people_work,
    StepKind.RECOVERY_CHECK: rollback.recovery_check,
    StepKind.ROLLBACK: rollback.rollback,
    StepKind.ASSIGN_TERRITORIES: rollback.assign_territories,
    StepKind.SERVICE_CHECK: rollback.service_check,
}
