"""Per-vendor version parsing and ordering.

Each vendor spells versions its own way; all of them parse into one orderable :class:`Version`:

* CCE / Autopilot: ``v1.23.8-r0`` (``v`` optional, ``-rN`` is the platform revision) — numeric
  per part, so ``v1.23.8-r0 < v1.23.10-r0`` and ``v1.28 == v1.28.0-r0``.
* OceanBase: ``4.2.1.0-100000102023092807``, ``2.2.75-20210108170301`` — release parts, then the
  build number.
* NAVER Cloud Kafka: names (``3.5.1``) or version *codes* (``3503006``: the first three digits are
  major, minor, patch; the rest is the build), so a code and its name sort together.
* StarRocks and anything else: dotted numbers with an optional pre-release (``3.3.2``,
  ``3.3.0-rc1`` < ``3.3.0``).

Release parts are compared padded with zeros (``1.28`` == ``1.28.0``). A text that does not parse
raises :class:`BadVersion` naming the text and the expected shape; so does a text longer than
:data:`shared.limits.LIMITS` ``.max_name`` (64) characters (no vendor's version is; and Python's
``int()`` refuses thousands of digits with a ValueError of its own).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from shared.limits import LIMITS

__all__ = [
    "BadVersion",
    "Version",
    "compare",
    "is_newer",
    "names",
    "on_track",
    "parse_version",
    "reached",
    "scheme_for",
]

#: Products/kinds and the scheme that parses their versions.
_SCHEMES = {
    "cce": "cce",
    "autopilot": "cce",
    "cce-autopilot": "cce",
    "oceanbase": "build",
    "ncloud-kafka": "kafka",
    "kafka": "kafka",
    "starrocks": "semver",
}
_EXPECTED = {
    "cce": "'v1.23.8-r0'",
    "build": "'4.2.1.0-100000102023092807' or '2.2.75-20210108170301'",
    "kafka": "'3.5.1', 'Kafka 3.5.1' or a version code like '3503006'",
    "semver": "'3.3.2' or '3.3.0-rc1'",
}
_RELEASE = r"v?(?P<release>\d+(?:\.\d+)*)"
_PATTERNS = {
    "cce": re.compile(_RELEASE + r"(?:-r(?P<build>\d+))?$", re.I),
    "build": re.compile(_RELEASE + r"(?:[-_](?P<build>\d+))?$", re.I),
    # NAVER names versions "Kafka 3.9.0" (getCDSSVersionList kafkaVersionName): the word is optional
    "kafka": re.compile(r"(?:kafka\s*)?" + _RELEASE + r"$", re.I),
    "semver": re.compile(_RELEASE + r"(?:[-.]?(?P<pre>[A-Za-z][A-Za-z0-9.\-]*))?(?:\+[A-Za-z0-9.\-]+)?$"),
}
#: A Kafka version code: three digits of major/minor/patch followed by a build number.
_KAFKA_CODE = re.compile(r"^(\d)(\d)(\d)(\d+)$")
_WIDTH = 4


class BadVersion(ValueError):
    """A version text that does not parse for its product."""


@dataclass(frozen=True, order=False)
class Version:
    """A parsed version; compares by release parts, then final-over-pre-release, then build."""

    text: str
    release: tuple[int, ...]
    build: int = 0
    pre: tuple[tuple[int, int, str], ...] = ()
    key: tuple[object, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        padded = self.release + (0,) * max(0, _WIDTH - len(self.release))
        # No pre-release sorts after any pre-release of the same release (3.3.0-rc1 < 3.3.0).
        object.__setattr__(self, "key", (padded, 0 if self.pre else 1, self.pre, self.build))

    def __lt__(self, other: Version) -> bool:
        return self.key < other.key

    def __le__(self, other: Version) -> bool:
        return self.key <= other.key

    def __gt__(self, other: Version) -> bool:
        return self.key > other.key

    def __ge__(self, other: Version) -> bool:
        return self.key >= other.key

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Version) and self.key == other.key

    def __hash__(self) -> int:
        return hash(self.key)

    def __str__(self) -> str:
        return self.text


def scheme_for(kind_or_product: str) -> str:
    """The parsing scheme of a kind or product key; unknown products use dotted numbers."""
    return _SCHEMES.get(kind_or_product, "semver")


def _pre_parts(text: str | None) -> tuple[tuple[int, int, str], ...]:
    # rc10 > rc9: digits compare as numbers, words as text, and a number sorts before a word.
    if not text:
        return ()
    return tuple(
        (0, int(p), "") if p.isdigit() else (1, 0, p.lower()) for p in re.findall(r"\d+|[A-Za-z]+", text)
    )


def parse_version(kind_or_product: str, text: str) -> Version:
    """Parse ``text`` as a version of ``kind_or_product``; BadVersion when it does not fit."""
    scheme = scheme_for(kind_or_product)
    raw = str(text).strip()
    if len(raw) > LIMITS.max_name:
        raise BadVersion(
            f"{raw[:20]!r}… ({len(raw)} characters) is not a {kind_or_product} version: "
            f"longer than {LIMITS.max_name} characters"
        )
    if scheme == "kafka" and (code := _KAFKA_CODE.match(raw)) and len(raw) >= 5:
        major, minor, patch, build = (int(g) for g in code.groups())
        return Version(raw, (major, minor, patch), build)
    m = _PATTERNS[scheme].match(raw)
    if not m:
        raise BadVersion(
            f"{text!r} is not a {kind_or_product} version (expected something like {_EXPECTED[scheme]})"
        )
    release = tuple(int(p) for p in m.group("release").split("."))
    groups = m.groupdict()
    build = int(groups.get("build") or 0)
    return Version(raw, release, build, _pre_parts(groups.get("pre")))


def _v(kind: str, v: str | Version) -> Version:
    return v if isinstance(v, Version) else parse_version(kind, v)


def compare(kind: str, a: str | Version, b: str | Version) -> int:
    """-1, 0 or 1 as ``a`` is older than, the same as, or newer than ``b``."""
    va, vb = _v(kind, a), _v(kind, b)
    return (va > vb) - (va < vb)


def is_newer(kind: str, candidate: str | Version, current: str | Version) -> bool:
    """True when ``candidate`` is strictly newer than ``current``."""
    return compare(kind, candidate, current) > 0


def on_track(kind: str, version: str | Version, track: str | None) -> bool:
    """True when ``version`` is on the release line ``track`` (``'3.3'`` takes ``3.3.x``); no track takes all.

    The track's release parts must be a prefix of the version's (``v1.29`` takes ``v1.29.8-r0``
    but not ``v1.30``; Kafka track ``3.5`` takes code ``3503006``).
    """
    if track is None or str(track).strip() in ("", "*"):
        return True
    t = parse_version(kind, str(track).strip().rstrip(".x").rstrip("."))
    v = _v(kind, version)
    return v.release[: len(t.release)] == t.release


def reached(kind: str, current: str | None, to: str) -> bool:
    """Does a target running ``current`` already run ``to`` (or newer)? A text that does not
    parse reaches only itself."""
    if not current:
        return False
    try:
        return compare(kind, current, to) >= 0
    except BadVersion:
        return current == to


def names(kind: str, version: str | None, to: str) -> bool:
    """Is ``version`` (as a vendor spells it in a task) what we asked for with ``to``? ``to`` may
    name a line (``v1.29``) that the vendor resolved to a full version (``v1.29.3-r0``)."""
    if not version:
        return False
    try:
        return compare(kind, version, to) == 0 or on_track(kind, version, to)
    except BadVersion:
        return version == to
