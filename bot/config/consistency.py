"""Checks that span sections: unique names, and simulation entries that name real clusters.

They read the raw mapping (a file as loaded, or a Settings dumped), so they are reported alongside
every field problem, and skip whatever a field check already refuses.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from bot.config.problems import Loc, Problem, render_key


@dataclass(frozen=True)
class _Entry:
    loc: Loc
    name: str
    kind: str  # "supercluster" or "cluster"
    parent: str | None  # the supercluster of a superclustered cluster
    parent_index: int | None


def consistency_problems(raw: Mapping[str, Any], root: type[BaseModel]) -> list[Problem]:
    """Check what spans sections of `raw` (validated as `root`), each problem at its key."""
    entries = _entries(raw)
    found = _duplicate_names(entries, raw, root) + _simulation_problems(raw, entries)
    return [Problem(render_key(loc, raw, root), message) for loc, message in found]


def _dicts(node: Any) -> list[tuple[int, dict[Any, Any]]]:
    return [(i, x) for i, x in enumerate(node) if isinstance(x, dict)] \
        if isinstance(node, list) else []


def _str_name(item: dict[Any, Any]) -> str | None:
    name = item.get("name")
    return name if isinstance(name, str) else None


def _entries(raw: Mapping[str, Any]) -> list[_Entry]:
    entries = []
    for i, sc in _dicts(raw.get("superclusters")):
        sc_name = _str_name(sc)
        if sc_name is not None:
            entries.append(_Entry(("superclusters", i, "name"), sc_name, "supercluster",
                                  None, None))
        for j, c in _dicts(sc.get("clusters")):
            if (name := _str_name(c)) is not None:
                entries.append(_Entry(("superclusters", i, "clusters", j, "name"), name,
                                      "cluster", sc_name or f"#{i}", i))
    for j, c in _dicts(raw.get("clusters")):
        if (name := _str_name(c)) is not None:
            entries.append(_Entry(("clusters", j, "name"), name, "cluster", None, None))
    return entries


def _duplicate_names(entries: list[_Entry], raw: Mapping[str, Any],
                     root: type[BaseModel]) -> list[tuple[Loc, str]]:
    problems: list[tuple[Loc, str]] = []
    seen: dict[str, _Entry] = {}
    for e in entries:
        first = seen.setdefault(e.name.casefold(), e)
        if first is e:
            continue
        if e.kind == first.kind == "cluster" and first.parent is not None:
            if e.parent_index == first.parent_index:
                msg = f"cluster {e.name!r} is listed twice in supercluster {e.parent!r}"
            elif e.parent is not None:
                msg = (f"cluster {e.name!r} is already in supercluster {first.parent!r}; "
                       "a cluster belongs to at most one supercluster")
            else:
                msg = (f"cluster {e.name!r} is already in supercluster {first.parent!r}; "
                       "list it there or under the stand-alone clusters, not both")
        else:
            msg = (f"the name {e.name!r} is already used by the {first.kind} at "
                   f"{render_key(first.loc[:-1], raw, root)}; every supercluster and cluster "
                   "needs its own name")
        problems.append((e.loc, msg))
    return problems


def _unknown(what: str, name: str, known: Sequence[str]) -> str:
    known = list(dict.fromkeys(known))
    close = difflib.get_close_matches(name, list(known), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    listed = f" Known: {', '.join(known)}" if known else f" The inventory has no {what}s."
    return f"unknown {what} {name!r}{hint}{'' if close else '.'}{listed}"


def _simulation_problems(raw: Mapping[str, Any], entries: list[_Entry]) -> list[tuple[Loc, str]]:
    sim = raw.get("simulation")
    if not isinstance(sim, dict):
        return []
    clusters = [e.name for e in entries if e.kind == "cluster"]
    problems: list[tuple[Loc, str]] = []
    # Exact names here: the simulator looks these up by the inventory's spelling.
    for section in ("clusters", "faults"):
        if isinstance(sim.get(section), dict):
            problems += [(("simulation", section, key), _unknown("cluster", str(key), clusters))
                         for key in sim[section] if key not in clusters]
    superclusters = {e.name: e for e in entries if e.kind == "supercluster"}
    territories = sim.get("territories")
    for sc_name, items in (territories.items() if isinstance(territories, dict) else ()):
        loc: Loc = ("simulation", "territories", sc_name)
        if sc_name not in superclusters:
            problems.append((loc, _unknown("supercluster", str(sc_name), list(superclusters))))
            continue
        members = [e.name for e in entries if e.kind == "cluster"
                   and e.parent_index == superclusters[sc_name].loc[1]]
        problems += _territory_problems(loc, sc_name, members, items)
    return problems


def _territory_problems(loc: Loc, sc_name: str, members: list[str],
                        items: Any) -> list[tuple[Loc, str]]:
    problems: list[tuple[Loc, str]] = []
    ids: set[str] = set()
    hosts: list[str] = []
    for k, t in _dicts(items):
        for role in ("primary", "backup"):
            value = t.get(role)
            if isinstance(value, str) and value not in members:
                problems.append(((*loc, k, role), f"{value!r} is not a cluster of supercluster "
                                 f"{sc_name!r} (its clusters: {', '.join(members)})"))
        if t.get("backup") is not None and t.get("backup") == t.get("primary"):
            problems.append(((*loc, k, "backup"), "the backup must be another cluster than the "
                                                  "primary"))
        if isinstance(t.get("id"), str) and t["id"] in ids:
            problems.append(((*loc, k, "id"), f"territory id {t['id']!r} is used twice"))
        ids.add(str(t.get("id")))
        if t.get("conference_room_host") is True and isinstance(t.get("primary"), str) \
                and t["primary"] not in hosts:
            hosts.append(t["primary"])
    if len(hosts) > 3:
        problems.append((loc, "at most 3 clusters of a supercluster host conference rooms, got "
                              f"{len(hosts)}: {', '.join(hosts)}"))
    return problems
