"""`/upgrade stage TARGET VERSION`: operators only; the answer reports cluster by cluster."""

from __future__ import annotations

from tests.support.workspace import VISITOR, Workspace


def test_stage_uploads_and_reports_per_cluster(ws: Workspace) -> None:
    reply = ws.command("stage global 10.1.0.1")
    assert reply.status == 200
    [answer] = reply.responses
    text = answer["text"]
    assert text.startswith("Staging 10.1.0.1 on global (upload and check only")
    for cluster in ("dallas", "denver"):
        assert f"✅ {cluster}: 10.1.0.1 uploaded" in text
    assert "skips the upload" in text
    assert not [r for r in ws.sim.requests if r.method != "GET"
                and not r.path.endswith("/upgrade-package/url")]


def test_stage_is_for_operators_and_says_what_it_expects(ws: Workspace) -> None:
    refused = ws.command("stage global 10.1.0.1", user=VISITOR)
    assert "operator" in " ".join(refused.texts()).lower()
    bad = ws.command("stage global")
    assert "`stage` expects a TARGET and a VERSION" in " ".join(bad.texts())
    assert ws.sim.count("POST", "/installed-software/upgrade-package/url") == 0
