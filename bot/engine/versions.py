"""DMA version strings: lenient parsing, ordering, and the vendor's compatibility rule.

Versions look like `4.0.3`, `5.2.2.6`, `6.0.1J`, `10.0.0.3`: MAJOR.MINOR.PATCH, an optional build
number and an optional letter suffix (a build variant). Two versions are compatible exactly when
MAJOR and MINOR are equal (dma-procedures.md, "Version compatibility").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import total_ordering

from bot.engine.errors import UserError

_EXPECTED = "MAJOR.MINOR.PATCH with an optional .BUILD and letter suffix, e.g. 10.1.0.1 or 6.0.1J"
_PATTERN = re.compile(r"(\d+)\.(\d+)\.(\d+)(?:\.(\d+))?([A-Za-z]*)")


class InvalidVersion(UserError, ValueError):
    """A version string that is not MAJOR.MINOR.PATCH[.BUILD][suffix]."""

    def __init__(self, text: str) -> None:
        super().__init__(f"'{text}' is not a DMA version: expected {_EXPECTED}")
        self.text = text


@total_ordering
@dataclass(frozen=True, eq=False)
class Version:
    """A parsed version; compares by (major, minor, patch, build or 0, suffix)."""

    raw: str
    major: int
    minor: int
    patch: int
    build: int | None
    suffix: str

    @property
    def key(self) -> tuple[int, int, int, int, str]:
        """The tuple that orders versions (a missing build counts as 0)."""
        return (self.major, self.minor, self.patch, self.build or 0, self.suffix)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self.key == other.key

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self.key < other.key

    def __hash__(self) -> int:
        return hash(self.key)

    def __str__(self) -> str:
        return self.raw


def parse_version(text: str) -> Version:
    """Parse a version leniently: surrounding spaces and a leading v/V are ignored."""
    if not isinstance(text, str):
        raise InvalidVersion(repr(text))
    cleaned = text.strip()
    if cleaned[:1] in ("v", "V"):
        cleaned = cleaned[1:].strip()
    match = _PATTERN.fullmatch(cleaned)
    if match is None:
        raise InvalidVersion(text.strip())
    major, minor, patch, build, suffix = match.groups()
    # The suffix is a build variant letter; case carries no meaning, so compare it upper-cased.
    return Version(raw=cleaned, major=int(major), minor=int(minor), patch=int(patch),
                   build=int(build) if build is not None else None, suffix=suffix.upper())


def as_version(value: Version | str) -> Version:
    """Return a Version, parsing strings."""
    return value if isinstance(value, Version) else parse_version(value)


def compatible(a: Version | str, b: Version | str) -> bool:
    """Return True when both versions share MAJOR and MINOR (may live in one supercluster)."""
    va, vb = as_version(a), as_version(b)
    return (va.major, va.minor) == (vb.major, vb.minor)


def is_upgrade(current: Version | str, target: Version | str) -> bool:
    """Return True when the target is newer than the current version."""
    return as_version(target) > as_version(current)


def is_patch_upgrade(current: Version | str, target: Version | str) -> bool:
    """Return True for an upgrade that stays compatible (same MAJOR.MINOR)."""
    return compatible(current, target) and is_upgrade(current, target)


def same_version(a: str | None, b: str | None) -> bool:
    """Compare two reported version strings: by parsed value when both parse, else literally."""
    if a is None or b is None:
        return a is b
    try:
        return parse_version(a) == parse_version(b)
    except InvalidVersion:
        return a.strip() == b.strip()
