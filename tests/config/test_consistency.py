"""Checks across sections: one name per supercluster or cluster, and simulation entries that
name clusters of the inventory."""

from __future__ import annotations

import textwrap

from tests.config.helpers import CLUSTER, problems_of, sc_with


def test_the_same_cluster_in_two_superclusters_is_refused():
    text = f"""
superclusters:
  - name: east
    clusters: [{CLUSTER % ("dallas", "dallas")}]
  - name: west
    clusters: [{CLUSTER % ("dallas", "dallas2")}]
"""
    [problem] = problems_of(text)
    assert problem.key == "superclusters[west].clusters[dallas].name"
    assert "already in supercluster 'east'" in problem.message


def test_a_cluster_listed_twice_in_one_supercluster_is_named_by_position():
    [problem] = problems_of(sc_with(CLUSTER % ("dallas", "a"), CLUSTER % ("Dallas", "b")))
    assert problem.key == "superclusters[global].clusters[1].name"
    assert "listed twice in supercluster 'global'" in problem.message


def test_a_superclustered_cluster_cannot_also_be_stand_alone():
    text = sc_with(CLUSTER % ("dallas", "a")) + f"clusters: [{CLUSTER % ('dallas', 'b')}]\n"
    [problem] = problems_of(text)
    assert problem.key == "clusters[dallas].name"
    assert "not both" in problem.message


def test_a_cluster_cannot_share_a_supercluster_name():
    text = sc_with(CLUSTER % ("dallas", "a")) + f"clusters: [{CLUSTER % ('global', 'b')}]\n"
    [problem] = problems_of(text)
    assert problem.key == "clusters[global].name"
    assert "already used by the supercluster at superclusters[global]" in problem.message


def test_simulation_must_name_clusters_of_the_inventory():
    text = sc_with(CLUSTER % ("dallas", "a"), CLUSTER % ("denver", "b")) + textwrap.dedent("""\
        clusters: [{name: lab, api_url: "https://lab.example.com"}]
        simulation:
          clusters: {dalas: {active_calls: 1}}
          faults: {nowhere: [never-returns]}
          territories:
            globl: []
            global:
              - {id: t1, name: One, primary: lab, backup: denver}
              - {id: t2, name: Two, primary: denver, backup: denver}
        """)
    problems = {p.key: p.message for p in problems_of(text)}
    assert problems["simulation.clusters[dalas]"].startswith(
        "unknown cluster 'dalas'; did you mean 'dallas'?")
    assert "unknown cluster 'nowhere'" in problems["simulation.faults[nowhere]"]
    assert "did you mean 'global'" in problems["simulation.territories[globl]"]
    assert problems["simulation.territories[global][t1].primary"] == \
        "'lab' is not a cluster of supercluster 'global' (its clusters: dallas, denver)"
    assert "another cluster than the primary" in \
        problems["simulation.territories[global][t2].backup"]
    assert len(problems) == 5


def test_at_most_three_clusters_host_conference_rooms():
    names = ["a", "b", "c", "d"]
    territories = "".join(
        f"      - {{id: t{n}, name: T, primary: {n}, conference_room_host: true}}\n" for n in names)
    text = sc_with(*(CLUSTER % (n, n) for n in names)) + \
        "simulation:\n  territories:\n    global:\n" + territories
    [problem] = problems_of(text)
    assert problem.key == "simulation.territories[global]"
    assert "at most 3 clusters" in problem.message and "got 4" in problem.message
