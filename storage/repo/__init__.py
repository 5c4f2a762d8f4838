"""Repository functions: each takes a keyword-only session, flushes, and never commits.

The caller (a Slack middleware, the worker, the CLI) owns the unit of work. Inserts that can race
with another process (event ids, outbox keys, approvals, snapshots) run in a SAVEPOINT, so that a
duplicate is reported as such and never breaks the caller's transaction.

One module per aggregate; everything public is re-exported here, so callers write
`from storage import repo` and `repo.claim_next_step(...)`.
"""

from storage.db import ping
from storage.repo.approvals import (
    active_approvals,
    active_approvals_by_kind,
    set_approval,
    withdraw_approval,
)
from storage.repo.audits import WRITTEN as AUDIT_WRITTEN
from storage.repo.audits import audit, audit_trail
from storage.repo.claims import (
    PARKED,
    LeaseLost,
    claim_due_steps,
    claim_next_step,
    claims_of,
    next_step_moment,
    release_step,
    renew_lease,
    unpark_dependents,
    unpark_ready,
)
from storage.repo.events import event_id_seen, purge_event_ids, record_event_id
from storage.repo.outbox import (
    OUTBOX_LOCK_KEY,
    claim_message,
    enqueue_message,
    last_edited,
    last_sent,
    lock_outbox,
    newest_unsent_edit,
    outbox_backlog,
    pending_messages,
    sent_by_run,
    settle_message,
    supersede_messages,
    unsent_messages,
)
from storage.repo.polls import PollRecord, record_poll
from storage.repo.records import (
    add_escalation,
    duration_history,
    escalations_of,
    open_escalations,
    record_step_duration,
    resolve_escalations,
    save_territory_snapshot,
    territory_snapshot,
    unacknowledged_escalations,
)
from storage.repo.reports import (
    add_dma_requests,
    dma_requests_of,
    due_reverifications,
    next_reverification,
    reverification_of,
    schedule_reverification,
)
from storage.repo.runs import (
    add_run,
    get_run,
    get_run_by_message,
    list_runs,
    lock_run,
    parse_run_ref,
    runs_by_status,
    runs_with_plan_message,
    set_message_ts,
)
from storage.repo.steps import add_steps, steps_of, unfinished_steps

__all__ = [
    "AUDIT_WRITTEN",
    "OUTBOX_LOCK_KEY",
    "PARKED",
    "LeaseLost",
    "PollRecord",
    "active_approvals",
    "active_approvals_by_kind",
    "add_dma_requests",
    "add_escalation",
    "add_run",
    "add_steps",
    "audit",
    "audit_trail",
    "claim_due_steps",
    "claim_message",
    "claim_next_step",
    "claims_of",
    "dma_requests_of",
    "due_reverifications",
    "duration_history",
    "enqueue_message",
    "escalations_of",
    "event_id_seen",
    "get_run",
    "get_run_by_message",
    "last_edited",
    "last_sent",
    "list_runs",
    "lock_outbox",
    "lock_run",
    "newest_unsent_edit",
    "next_reverification",
    "next_step_moment",
    "open_escalations",
    "outbox_backlog",
    "parse_run_ref",
    "pending_messages",
    "ping",
    "purge_event_ids",
    "record_event_id",
    "record_poll",
    "record_step_duration",
    "release_step",
    "renew_lease",
    "resolve_escalations",
    "reverification_of",
    "runs_by_status",
    "runs_with_plan_message",
    "save_territory_snapshot",
    "schedule_reverification",
    "sent_by_run",
    "set_approval",
    "set_message_ts",
    "settle_message",
    "steps_of",
    "supersede_messages",
    "territory_snapshot",
    "unacknowledged_escalations",
    "unfinished_steps",
    "unpark_dependents",
    "unpark_ready",
    "unsent_messages",
    "withdraw_approval",
]
