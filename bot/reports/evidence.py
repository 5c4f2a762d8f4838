"""The evidence bundle: one zip of named files, with a README that says what each one holds."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Mapping
from datetime import datetime

# What each file of the bundle holds, in the order the README lists them.
CONTENTS: Mapping[str, str] = {
    "plan.txt": "the plan as it was posted for approval (plain text)",
    "plan.json": "the plan as stored: strategy, order, steps, estimates, digest",
    "audit.csv": "the audit trail: who did what and when, every state change",
    "audit.json": "the same audit trail with each entry's details",
    "clusters.json": "each cluster: versions before and after, its steps' states, and its "
                     "software, servers, supercluster and operation history as last read",
    "dma-requests.jsonl": "every request the run sent to a cluster and the answer "
                          "(credentials, URL queries and secret-looking fields redacted)",
    "timings.csv": "each step's time against its estimate, and each cluster's total",
    "escalations.json": "every escalation as recorded: condition, cluster, servers, times, "
                        "what was done",
    "timeline.png": "the picture: planned and actual phases per cluster, outage, window, "
                    "escalations",
}


def build_zip(run_name: str, summary: str, files: Mapping[str, bytes | str],
              at: datetime) -> bytes:
    """Return the zip of `files` with a README.txt listing them (unknown names refused)."""
    unknown = sorted(set(files) - set(CONTENTS))
    if unknown:
        raise ValueError(f"not an evidence file: {', '.join(unknown)}")
    readme = [f"Evidence bundle of {run_name}, made {at.isoformat(timespec='seconds')}", "",
              summary, "", "Files:"]
    readme += [f"  {name:<20} {words}" for name, words in CONTENTS.items() if name in files]
    out = io.BytesIO()
    stamp = at.timetuple()[:6]
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
        for name, content in {"README.txt": "\n".join(readme) + "\n", **files}.items():
            info = zipfile.ZipInfo(f"{run_name}/{name}", date_time=stamp)
            info.compress_type = zipfile.ZIP_DEFLATED
            bundle.writestr(info, content.encode() if isinstance(content, str) else content)
    return out.getvalue()
