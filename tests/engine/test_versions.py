"""Version strings as operators type them and as clusters report them."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.engine.versions import (
    InvalidVersion,
    Version,
    compatible,
    is_patch_upgrade,
    is_upgrade,
    parse_version,
)

numbers = st.integers(min_value=0, max_value=30)
suffixes = st.sampled_from(["", "J", "K", "a"])


@st.composite
def version_texts(draw: st.DrawFn) -> str:
    parts = [draw(numbers) for _ in range(3)]
    if draw(st.booleans()):
        parts.append(draw(numbers))
    return ".".join(map(str, parts)) + draw(suffixes)


versions = version_texts().map(parse_version)


@pytest.mark.parametrize(("text", "parts"), [
    ("4.0.3", (4, 0, 3, None, "")),
    ("5.2.2.6", (5, 2, 2, 6, "")),
    ("6.0.1J", (6, 0, 1, None, "J")),
    ("10.0.0.3", (10, 0, 0, 3, "")),
    ("  v10.1.0.1 ", (10, 1, 0, 1, "")),
    ("V9.0.1.2", (9, 0, 1, 2, "")),
])
def test_the_version_forms_of_the_guide_parse(text: str, parts: tuple[object, ...]) -> None:
    version = parse_version(text)
    assert (version.major, version.minor, version.patch, version.build, version.suffix) == parts
    assert str(version) == text.strip().lstrip("vV")


@pytest.mark.parametrize("text", ["", "   ", "v", "10", "10.1", "10.1.", "10.x.0", "10.1.0.1.2",
                                  "10.1.0-rc1", "ten.one.zero", "10.1.0 J"])
def test_bad_versions_say_what_is_expected(text: str) -> None:
    expected = r"MAJOR\.MINOR\.PATCH .* e\.g\. 10\.1\.0\.1 or 6\.0\.1J"
    with pytest.raises(InvalidVersion, match=expected):
        parse_version(text)


def test_a_missing_build_counts_as_zero_and_the_suffix_orders_after() -> None:
    assert parse_version("10.1.0") == parse_version("10.1.0.0")
    assert parse_version("6.0.1") < parse_version("6.0.1J") < parse_version("6.0.2")
    assert parse_version("9.0.1.2") < parse_version("10.0.0.3")  # numeric, not textual


def test_upgrades_and_patch_upgrades() -> None:
    assert is_patch_upgrade("10.0.0.3", "10.0.0.4")
    assert not is_patch_upgrade("10.0.0.3", "10.1.0.1")  # minor: incompatible
    assert is_upgrade("10.0.0.3", "10.1.0.1")
    assert not is_upgrade("10.1.0.1", "10.1.0.1")
    assert not is_upgrade("10.1.0.1", "10.0.0.3")


@given(version_texts())
def test_printing_and_parsing_round_trip(text: str) -> None:
    version = parse_version(text)
    assert str(version) == text
    assert parse_version(str(version)) == version


@given(versions, versions)
def test_ordering_is_total_and_follows_the_key(a: Version, b: Version) -> None:
    assert [a < b, a == b, a > b].count(True) == 1
    assert (a < b) == (a.key < b.key)
    if a == b:
        assert hash(a) == hash(b)  # usable as dict keys and in sets


@given(versions, versions, versions)
def test_ordering_is_transitive(a: Version, b: Version, c: Version) -> None:
    if a <= b and b <= c:
        assert a <= c


@given(versions, versions, versions)
def test_compatibility_is_an_equivalence_relation(a: Version, b: Version, c: Version) -> None:
    assert compatible(a, a)
    assert compatible(a, b) == compatible(b, a)
    if compatible(a, b) and compatible(b, c):
        assert compatible(a, c)


@given(versions, suffixes, suffixes)
def test_the_suffix_never_affects_compatibility(v: Version, s1: str, s2: str) -> None:
    base = f"{v.major}.{v.minor}.{v.patch}"
    assert compatible(base + s1, base + s2)
    assert compatible(f"{v.major}.{v.minor}.0{s1}", v) == compatible(f"{v.major}.{v.minor}.0", v)
