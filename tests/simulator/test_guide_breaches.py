"""What a real DMA accepts but the guide forbids: the simulator records it for tests to read."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.simulator.test_simulator import PKG_MINOR, Lab, upload
from tests.simulator.test_supercluster import old_supercluster, put_territory, set_service


@pytest.fixture
def lab() -> Iterator[Lab]:
    with Lab() as running:
        yield running


def test_busying_out_the_only_server_of_a_territory_is_a_breach_once_watched(lab: Lab) -> None:
    sim = old_supercluster(lab)
    dallas = lab.dma("dallas")
    sim.watch_service()
    # Americas has a backup (denver): busying dallas out leaves it served.
    set_service(dallas, "dallas", "BUSIED_OUT")
    assert sim.breaches == []
    # Drop EMEA's backup, then busy its primary out: nobody serves EMEA.
    put_territory(dallas, "t-eu", "denver", None)
    lab.minutes(1)  # replication
    set_service(dallas, "denver", "BUSIED_OUT")
    # EMEA has nobody now, and Americas neither (dallas and denver both busied out).
    assert sorted(b.split("territory ")[1].split()[0] for b in sim.breaches) == [
        "t-am", "t-eu"]
    assert all("after POST dallas/dma-supercluster/denver/set-service-status" in b
               for b in sim.breaches)


def test_a_territory_the_plan_leaves_unserved_is_no_breach(lab: Lab) -> None:
    sim = old_supercluster(lab)
    dallas = lab.dma("dallas")
    put_territory(dallas, "t-eu", "denver", None)
    lab.minutes(1)
    sim.watch_service({"t-eu": "the approved plan leaves EMEA unserved while denver installs"})
    set_service(dallas, "denver", "BUSIED_OUT")
    assert sim.breaches == []


def test_an_install_with_calls_up_is_recorded(lab: Lab) -> None:
    sim = old_supercluster(lab)
    boston = lab.dma("boston")
    upload(lab, boston, PKG_MINOR)  # boston is stand-alone and in service
    boston.post("/installed-software/upgrade-package/apply", expect=202)
    assert any("install on boston while IN_SERVICE" in b for b in sim.breaches)
