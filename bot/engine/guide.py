"""The vendor's words that plans show to people: the pre-flight checklist and the ten factors."""

from __future__ import annotations

# dma-procedures.md, "Before any upgrade" (guide), in its order.
PREFLIGHT_CHECKLIST: tuple[str, ...] = (
    "Read the target version's release notes.",
    "Download a recent backup (or snapshot the VM), even though installing creates one: only the "
    "last upgrade can be rolled back, and a rollback restores the database, so data made since "
    "is lost.",
    "Do not upgrade with calls active except in an emergency: a restart drops calls.",
    "If the upgrade needs new licence activation keys, obtain them beforehand.",
    "Upload the package to every cluster ahead of time, then do the rest in a maintenance window "
    "with no calls.",
)

# dma-procedures.md, "Factors to consider before an incremental upgrade" (guide; all ten, in order).
INCREMENTAL_FACTORS: tuple[str, ...] = (
    "It can easily take five times as long as the simplified method.",
    "Both the shrinking old supercluster and the growing new one have limited capacity for a long "
    "time: some endpoints may fail to register; the remaining MCUs may not carry all conferences; "
    "some endpoints may fail to redirect their registrations and cannot make or receive calls.",
    "Territory associations must be changed every time a cluster leaves the old supercluster and "
    "every time one joins the new one.",
    "The video network is partitioned into separate islands of endpoints while clusters are split "
    "between the two superclusters.",
    "Some endpoints handle a gatekeeper change badly; redirecting them may need re-provisioning by "
    "an endpoint manager (RealPresence Resource Manager, CMA, third party) or manual "
    "reconfiguration and a restart.",
    "Configuration changes made to the old supercluster after the first cluster leaves may be lost "
    "when the new one is formed.",
    "Call and conference history that spans the old and new superclusters is not merged "
    "afterwards.",
    "With embedded DNS, enterprise DNS can point to only one of the two superclusters; the other "
    "loses territory fail-over.",
    "With Conference Manager, the two halves could host separate conferences on the same virtual "
    "meeting room.",
    "Site-topology bandwidth limits exist in both superclusters, which can overload links unless "
    "they are reconfigured.",
)

# The manual checklist items an operator acknowledges before a run starts (a button each), by key:
# release notes read, recent backup downloaded (or snapshot taken), licence keys obtained.
CHECKLIST_ACKS: dict[str, str] = {
    "release-notes": PREFLIGHT_CHECKLIST[0],
    "backup": PREFLIGHT_CHECKLIST[1],
    "licence-keys": PREFLIGHT_CHECKLIST[3],
}
# How the acknowledgement reads in short (buttons, the board, the audit).
CHECKLIST_SHORT: dict[str, str] = {
    "release-notes": "release notes read",
    "backup": "recent backup downloaded or snapshot taken",
    "licence-keys": "licence keys obtained (if needed)",
}
