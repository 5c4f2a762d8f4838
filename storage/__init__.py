"""Persistence: typed models (models), repository functions (repo), engines and migrations (db).

The database is the truth: runs, their steps and leases, approvals, the Slack outbox and the
audit trail. Repository functions never commit; the caller owns the unit of work.
"""
