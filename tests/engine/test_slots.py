"""The install-slot rule: a cluster holds its slot from the install request until verified."""

from __future__ import annotations

from bot.engine.slots import SlotView, may_start, slots_held
from bot.engine.states import StepStatus

S = StepStatus
LIMITS = {"install": 1}


def view(key: str, status: StepStatus, claimed: bool = False) -> SlotView:
    kind, _, cluster = key.partition(":")
    return SlotView(key, kind, cluster, status, claimed)


def test_a_cluster_holds_its_slot_from_the_request_until_it_is_verified() -> None:
    denver = view("install:denver", S.PENDING)
    for dallas_install, dallas_verify, held in [
        (S.PENDING, S.PENDING, 0),       # nothing asked yet
        (S.ACTIVE, S.PENDING, 1),        # the request is under way
        (S.DONE, S.PENDING, 1),          # restarting: still holds it
        (S.DONE, S.ACTIVE, 1),           # being verified: still holds it
        (S.DONE, S.DONE, 0),             # verified: free
        (S.SKIPPED, S.SKIPPED, 0),       # already on the target: never held one
    ]:
        steps = [view("install:dallas", dallas_install), view("verify:dallas", dallas_verify),
                 denver]
        assert slots_held(steps)["install"] == held
        assert may_start(denver, slots_held(steps), LIMITS) is (held == 0)


def test_a_claimed_step_holds_its_slot_before_it_is_marked_active() -> None:
    steps = [view("install:dallas", S.PENDING, claimed=True), view("install:denver", S.PENDING)]
    assert not may_start(steps[1], slots_held(steps), LIMITS)


def test_only_a_new_step_takes_a_slot_and_unlimited_kinds_always_go() -> None:
    active = view("install:dallas", S.ACTIVE)
    held = slots_held([active, view("install:denver", S.ACTIVE)])
    assert may_start(active, held, LIMITS)  # polled again while over the limit: fine
    assert may_start(view("verify:paris", S.PENDING), held, LIMITS)
    assert may_start(view("install:austin", S.PENDING), held, {"install": 3})


def test_a_cluster_installed_again_holds_one_slot_through_its_second_install() -> None:
    # After a manual rollback, `retry RUN reinstall` adds install-again:dallas before the
    # retried verify: the first install, long done, must not hold the slot the second needs.
    again = SlotView("install-again:dallas", "install", "dallas", S.PENDING, False)
    steps = [view("install:dallas", S.DONE), view("verify:dallas", S.ACTIVE), again]
    assert slots_held(steps)["install"] == 0
    assert may_start(again, slots_held(steps), LIMITS)
    steps = [view("install:dallas", S.DONE), view("verify:dallas", S.ACTIVE),
             SlotView("install-again:dallas", "install", "dallas", S.DONE, False)]
    assert slots_held(steps)["install"] == 1  # restarting again until verified
