"""The posted messages' Block Kit: everything of the text, within Slack's limits, with buttons."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from bot import messages
from bot.engine.impact import ServiceImpact
from bot.engine.planner import ClusterFacts, PlanRequest, Strategy, TerritoryFacts, make_plan
from bot.engine.states import RunStatus
from bot.messages.blocks import SECTION_MAX, sections
from bot.messages.escalation import EscalationPacket, PacketServer


def incremental_plan() -> Any:
    clusters = tuple(ClusterFacts(name=n, servers=2, version="10.0.0.3")
                     for n in ("dallas", "denver", "austin"))
    territories = (TerritoryFacts("t1", "Americas", "dallas", "denver"),)
    return make_plan(PlanRequest(target="global", target_kind="supercluster", clusters=clusters,
                                 territories=territories, to_version="10.1.0.1",
                                 strategy=Strategy.INCREMENTAL))


def plan_payload(name: str = "R7",
                 status: RunStatus = RunStatus.AWAITING_APPROVAL) -> dict[str, Any]:
    return messages.plan_message(
        name, incremental_plan(), window="2026-11-28 22:00-06:00 America/Chicago (8h)",
        approvals_required=2, approvers=["S0APPROVERS", "U0APPROVER3"],
        approve_reaction="white_check_mark", reject_reaction="x", requester="U0OPERATOR",
        approvals=["U0APPROVER1"], status=status)


def buttons(payload: dict[str, Any]) -> dict[str, str]:
    return {e["action_id"]: e["value"] for b in payload["blocks"] if b["type"] == "actions"
            for e in b["elements"]}


def within_limits(payload: dict[str, Any]) -> bool:
    texts = [b["text"]["text"] for b in payload["blocks"] if b["type"] == "section"
             and "text" in b]
    return len(payload["blocks"]) <= 50 and all(len(t) <= SECTION_MAX for t in texts)


def test_the_plan_has_its_text_in_blocks_and_two_buttons() -> None:
    payload = plan_payload()
    blocks = json.dumps(payload["blocks"], ensure_ascii=False)

    for factor_number in range(1, 11):
        assert f"{factor_number}. " in blocks
    for words in ("R7 — upgrade global to 10.1.0.1", "incremental (some service maintained)",
                  "1. dallas (cluster A, seeds the new supercluster) — ", "Why this strategy",
                  "America/Chicago (8h)", "☐ Read the target version's release notes.",
                  "1 of 2 from <!subteam^S0APPROVERS>, <@U0APPROVER3>",
                  "Approved by: <@U0APPROVER1>", ":white_check_mark:"):
        assert words in blocks, words
    assert buttons(payload) == {"plan_approve": "R7", "plan_reject": "R7"}
    assert within_limits(payload)
    assert payload["text"].startswith("*R7* — upgrade plan for supercluster *global*")


def test_a_plan_that_ended_or_was_never_submitted_has_no_buttons() -> None:
    assert buttons(plan_payload(status=RunStatus.REJECTED)) == {}
    assert buttons(plan_payload(name="(not submitted)")) == {}


def test_a_run_stopped_at_preflight_says_it_did_not_start() -> None:
    notice = messages.notice("R3", "⛔", "did not start: the clusters no longer match the "
                             "plan: dallas runs 10.0.0.4, the plan says 10.0.0.3. After fixing "
                             "the cause: `/upgrade retry R3`, or `/upgrade abort R3`.",
                             actions=("retry", "abort"))
    board = messages.board_message("R3", RunStatus.FAILED, [
        messages.ClusterLine("dallas", "waiting", 0, 60)], elapsed_s=2, estimate_s=3600)

    assert notice["text"].startswith("⛔ R3 — did not start: the clusters no longer match")
    assert buttons(notice) == {"run_retry": "R3", "run_abort": "R3"}
    assert "did not start" in board["text"] and "did not start" in json.dumps(board["blocks"])


def test_notices_that_need_a_person_carry_the_buttons() -> None:
    overrun = messages.notice("R3", "⏱️", "would finish at 03:10 CST, after the window ends at "
                              "02:00 CST. Stopped at a safe point: approve the overrun to go on, "
                              "or `/upgrade abort R3`.", actions=("overrun", "abort"))
    done = messages.notice("R3", "🎉", "completed: global is on 10.1.0.1 (1 h 40 min)")
    approved = messages.notice("R3", "⏱️", "overrun approved by <@U1>; going on")

    assert buttons(overrun) == {"overrun_approve": "R3", "run_abort": "R3"}
    assert buttons(done) == buttons(approved) == {}
    assert buttons(messages.notice("R3", "📌", "x", actions=("resume",))) == {"run_resume": "R3"}


def test_the_escalation_prompt_has_everything_the_vendor_will_ask_for() -> None:
    at = datetime(2026, 11, 28, 8, 5, tzinfo=UTC)
    packet = EscalationPacket(
        run_name="R3", cluster="denver", condition="one-server",
        facts=("servers up: 1 of 2 servers up (denver-a UP, denver-b DOWN)",),
        from_version="10.0.0.3", to_version="10.0.0.4",
        servers=(PacketServer(1, "denver-a", "192.0.2.1", "UP", "10.0.0.4", "SN1"),
                 PacketServer(2, "denver-b", None, "DOWN", "10.0.0.3", None)),
        servers_note="as reported now", tz="America/Chicago", install_sent=at,
        last_answer_at=at + timedelta(minutes=33), last_answer="answered the checks",
        now=at + timedelta(minutes=34), estimate_min=30, waited_min=33.5,
        package_file="10.0.0.4.bin", sha1="5f2b", done=((at, "Install 10.0.0.4 on denver"),),
        impact=ServiceImpact((("denver", "busied out"),), (), ("West",)),
        contact="Polycom Global Services, +1 800 765 9266", notify=("S0ONCALL",))
    payload = messages.escalation_message(packet)
    blocks = json.dumps(payload["blocks"], ensure_ascii=False)

    for words in ("🚨 R3 — escalation on denver", "call Polycom Global Services, +1 800 765 "
                  "9266", "<!subteam^S0ONCALL>", "Vendor condition", "only one server",
                  "server 2 denver-b: DOWN, package 10.0.0.3, serial not reported",
                  "server 1 denver-a (192.0.2.1): UP, package 10.0.0.4, serial SN1",
                  "install sent 2026-11-28 02:05 CST", "now 2026-11-28 02:39 CST",
                  "waited 34 min", "10.0.0.4.bin, SHA-1 5f2b", "10.0.0.3 → 10.0.0.4",
                  "denver (busied out)", "no in-service manager: West",
                  "`/upgrade retry R3`", "`/upgrade rollback R3 denver`",
                  "`/upgrade restore R3`", "`/upgrade abort R3`"):
        assert words in blocks, words
    # The vendor's words appear once, not again inside the measured facts.
    assert payload["text"].count("only one server") == 1
    assert payload["reply_broadcast"] is True
    assert buttons(payload) == {"escalation_ack": "R3", "run_retry": "R3", "run_abort": "R3"}
    assert within_limits(payload)


def test_long_text_is_split_into_sections_at_line_ends() -> None:
    text = "\n".join(f"line {i} " + "x" * 90 for i in range(100))
    parts = sections(text)
    assert len(parts) > 1 and all(len(p["text"]["text"]) <= SECTION_MAX for p in parts)
    assert "\n".join(p["text"]["text"] for p in parts) == text
