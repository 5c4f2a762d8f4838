"""Files in the thread through Slack's upload calls; the evidence bundle; checks after the end."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from tests.support.engine_harness import PASSWORD, harness
from tests.support.workspace import APPROVERS, CHANNEL, workspace

pytestmark = pytest.mark.slow  # whole upgrades in virtual time

UPLOAD_CALLS = ["files.getUploadURLExternal", "upload", "files.completeUploadExternal"]


def _upload_calls(methods: list[str]) -> list[str]:
    return [m for m in methods if m in UPLOAD_CALLS]


def test_a_completed_run_uploads_its_timeline_and_is_checked_again_later(
        tmp_path: Path) -> None:
    with workspace(tmp_path) as ws:
        ws.command("plan lab 10.1.0.1")
        ws.acknowledge()
        ws.click("plan_approve", user=APPROVERS[0])
        ws.click("plan_approve", user=APPROVERS[1])
        assert ws.drive("R1") == "completed"
        ws.deliver()

        # Slack's current upload: an upload URL, the bytes POSTed there, then the completion
        # that shares the file in the run's thread with a comment.
        assert _upload_calls([c.method for c in ws.slack.calls]) == UPLOAD_CALLS
        [shared] = ws.slack.files()
        assert shared["name"] == "R1-timeline.png" and shared["thread_ts"] == ws.plan_ts()
        assert Image.open(io.BytesIO(shared["data"])).text["Rows"] == "lab"  # type: ignore[attr-defined]
        [reply] = [m for m in ws.slack.thread(CHANNEL, ws.plan_ts()) if m.get("files")]
        assert "R1 timeline" in reply["text"]

        # Twelve hours later (timing.reverify_after), once, the final checks in the thread.
        ws.clock.advance(11 * 3600)
        ws.tick()
        assert not [t for t in ws.thread() if "re-verification" in t]
        ws.clock.advance(3600 + 60)
        ws.tick()
        ws.tick()
        [again] = [t for t in ws.thread() if "re-verification" in t]
        assert "✅ R1 re-verification, 12 h after the end: final checks of *lab*" in again
        assert "all clean" in again

        # Anyone may ask for the checks now; the answer is posted to the channel.
        reply_ = ws.command("verify lab", user=APPROVERS[2])
        assert reply_.responses[-1]["text"].startswith("✅ lab:")
        ws.deliver()
        [posted] = [m["text"] for m in ws.slack.messages(CHANNEL) if "final checks of" in
                    m["text"]]
        assert posted.startswith("✅ Asked by <@U0APPROVER3>: final checks of *lab*")
        assert "✓ servers up" in posted

        # The evidence bundle on request, in the thread.
        assert "being uploaded" in ws.command("evidence R1").responses[-1]["text"]
        ws.deliver()
        bundle = next(f for f in ws.slack.files() if f["name"] == "R1-evidence.zip")
        assert "R1/timeline.png" in zipfile.ZipFile(io.BytesIO(bundle["data"])).namelist()


def test_an_escalation_attaches_the_evidence_the_vendor_asks_for(database_url: str) -> None:
    with harness(database_url, faults=["denver=never-returns"]) as h:
        name = h.plan(version="10.0.0.4")
        assert h.drive(name) == "escalated"
        uploads = [m for m in h.sink.sent if m.kind == "upload"]
        assert [m.payload["file"]["what"] for m in uploads] == ["timeline", "evidence"]
        assert all(m.thread for m in uploads)

        data = h.services.render_file(uploads[1].payload["file"])
        bundle = zipfile.ZipFile(io.BytesIO(data))
        names = {n.removeprefix(f"{name}/") for n in bundle.namelist()}
        assert names == {"README.txt", "plan.txt", "plan.json", "audit.csv", "audit.json",
                         "clusters.json", "dma-requests.jsonl", "timings.csv",
                         "escalations.json", "timeline.png"}
        read = {n: bundle.read(f"{name}/{n}") for n in names}

        # The escalation as recorded, with its condition and cluster.
        [escalation] = json.loads(read["escalations.json"])
        assert (escalation["cluster"], escalation["condition"]) == ("denver", "cannot-log-in")
        # Each cluster's versions, steps and software as last read.
        clusters = json.loads(read["clusters.json"])
        assert clusters["dallas"]["version_before"] == "10.0.0.3"
        assert any(s["status"] == "escalated" for s in clusters["denver"]["steps"])
        assert "software" in clusters["dallas"]["last_read"]
        # Every request the run made, and never the DMA password.
        requests = [json.loads(line) for line in read["dma-requests.jsonl"].splitlines()]
        assert len(requests) > 50
        assert any(r["method"] == "POST" and r["path"].endswith("/apply") for r in requests)
        assert all(PASSWORD.encode() not in content for content in read.values())
        # The plan in plain text, the audit trail, timings against estimates.
        assert b"*" not in read["plan.txt"].split(b"\n")[0]
        assert b"approve" in read["audit.csv"]
        timings = list(csv.DictReader(io.StringIO(read["timings.csv"].decode())))
        assert any(r["step"] == "install:denver" and r["estimate_s"] for r in timings)
        assert Image.open(io.BytesIO(read["timeline.png"])).format == "PNG"

        # The checks on demand see what the vendor would: denver's second server is down.
        result = h.services.verify("global", "U0OPERATOR", "C0UPGRADES")
        assert not result.ok and "denver" in result.summary
