"""Admin routes: who receives the digest for which messages.

The routes file (YAML, ``BOUNCEHOUSE_ROUTES``)::

    routes:
      - name: customers
        admins: [cs-ops@example.com]
        when: {tag: user_type, equals: customer}
      - name: everything-else          # no `when`: takes every message no other route took
        admins: [postmaster@example.com]

A message's tags are its SES ``mail.tags`` (name -> list of values); a ``when`` route takes a message
when any value of the tag equals ``equals``. A message can match several ``when`` routes: each of them
lists it. Any problem with the file raises ConfigError with one line that says what to fix.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from email.utils import parseaddr
from pathlib import Path
from typing import Any

import yaml

from bouncehouse.errors import ConfigError

# Deliberately simple: one @, no spaces, a dot in the domain (or localhost for local test setups).
_EMAIL = re.compile(r"^[^@\s<>(),;:\"\[\]]+@(?:[a-z0-9-]+(?:\.[a-z0-9-]+)+|localhost)$")
_ROUTE_KEYS = ("name", "admins", "when")
_WHEN_KEYS = ("tag", "equals")


@dataclass(frozen=True)
class Route:
    name: str
    admins: tuple[str, ...]
    tag: str | None = None
    equals: str | None = None

    @property
    def is_catch_all(self) -> bool:
        return self.tag is None

    def describe(self) -> str:
        return (
            "every message no other route takes"
            if self.is_catch_all
            else f"messages tagged {self.tag}={self.equals}"
        )


def _shown(value: str, limit: int = 80) -> str:
    """A value quoted for an error line, cut to ``limit`` characters so one line stays one line."""
    return repr(value if len(value) <= limit else value[:limit] + "...")


def normalize_address(value: str) -> str:
    """The contract's address rule: trim, drop a display name and angle brackets, lower-case."""
    _, address = parseaddr(str(value).strip())
    return address.strip().lower()


def load_routes(path: Path) -> list[Route]:
    """Read and validate the routes file; ConfigError (one line) on any problem."""
    path = Path(path)
    where = f"routes file {path}"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{where} does not exist (set BOUNCEHOUSE_ROUTES or --routes)") from None
    except IsADirectoryError:
        raise ConfigError(f"{where} is a directory, not a YAML file") from None
    except PermissionError:
        raise ConfigError(f"{where} is not readable (check its permissions)") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{where} is not UTF-8 text") from None
    except OSError as exc:
        raise ConfigError(f"{where} cannot be read: {exc.strerror}") from None
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "invalid syntax"
        raise ConfigError(f"{where} is not valid YAML{at}: {problem}") from None
    return parse_routes(document, where=where)


def parse_routes(document: Any, *, where: str = "routes file") -> list[Route]:
    if not isinstance(document, Mapping) or "routes" not in document:
        raise ConfigError(f"{where} must be a mapping with a `routes:` list")
    unknown = set(document) - {"routes"}
    if unknown:
        raise ConfigError(
            f"{where}: unknown top-level key(s) {', '.join(sorted(map(str, unknown)))} (only `routes:`)"
        )
    items = document["routes"]
    if not isinstance(items, Sequence) or isinstance(items, str) or not items:
        raise ConfigError(f"{where}: `routes:` must be a non-empty list of routes")
    routes = [_parse_route(item, index, where) for index, item in enumerate(items, start=1)]

    seen: set[str] = set()
    for route in routes:
        if route.name in seen:
            raise ConfigError(f"{where}: two routes are named {route.name!r} (names must be unique)")
        seen.add(route.name)
    catch_alls = [route.name for route in routes if route.is_catch_all]
    if len(catch_alls) > 1:
        raise ConfigError(
            f"{where}: routes {', '.join(map(repr, catch_alls))} both lack `when` (at most one catch-all route)"
        )
    return routes


def _only_keys(item: Mapping[Any, Any], allowed: tuple[str, ...], problem: str) -> None:
    """A typo in a key must not silently drop a condition or an admin."""
    unknown = set(item) - set(allowed)
    if unknown:
        raise ConfigError(f"{problem} {', '.join(sorted(map(str, unknown)))} (allowed: {', '.join(allowed)})")


def _parse_route(item: Any, index: int, where: str) -> Route:
    label = f"{where}: route #{index}"
    if not isinstance(item, Mapping):
        raise ConfigError(f"{label} must be a mapping with name, admins and optional when")
    _only_keys(item, _ROUTE_KEYS, f"{label}: unknown key(s)")
    name = item.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"{label} needs a `name:` (a non-empty string)")
    name = name.strip()
    # isprintable() also refuses U+2028/U+2029/U+0085, which Python's email headers treat as line breaks.
    if not name.isprintable():
        raise ConfigError(
            f"{label}: the name {_shown(name)} must be one line of printable characters "
            "(no control characters or line/paragraph separators)"
        )
    label = f"{where}: route {name!r}"

    admins_raw = item.get("admins")
    if isinstance(admins_raw, str):
        admins_raw = [admins_raw]
    if not isinstance(admins_raw, Sequence) or not admins_raw:
        raise ConfigError(f"{label} needs `admins:`, a non-empty list of email addresses")
    admins: list[str] = []
    for raw in admins_raw:
        if not isinstance(raw, str):
            # Never repr() it: YAML aliases can nest a list into billions of elements when printed.
            raise ConfigError(f"{label}: each admin must be an email address, got a {type(raw).__name__}")
        if not _EMAIL.match(normalize_address(raw)):
            raise ConfigError(f"{label}: {_shown(raw)} is not a valid email address")
        address = normalize_address(raw)
        if address not in admins:
            admins.append(address)

    when = item.get("when")
    if when is None:
        if "when" in item:
            raise ConfigError(
                f"{label}: `when:` is empty (give tag and equals, or drop `when` for a catch-all)"
            )
        return Route(name=name, admins=tuple(admins))
    if not isinstance(when, Mapping):
        raise ConfigError(f"{label}: `when:` must be a mapping {{tag: NAME, equals: VALUE}}")
    _only_keys(when, _WHEN_KEYS, f"{label}: unknown key(s) in `when:`")
    tag, equals = when.get("tag"), when.get("equals")
    if not isinstance(tag, str) or not tag.strip():
        raise ConfigError(f"{label}: `when:` needs `tag:` (a tag name)")
    if isinstance(equals, bool) or not isinstance(equals, str | int | float):
        raise ConfigError(
            f"{label}: `when:` needs `equals:` (a tag value; quote it if it looks like true/false)"
        )
    return Route(name=name, admins=tuple(admins), tag=tag.strip(), equals=str(equals))


def routes_for(tags: Mapping[str, Any] | None, routes: Sequence[Route]) -> list[Route]:
    """The routes that take a message with these SES tags (name -> list of values, or a single value)."""
    tags = tags or {}
    matched = []
    for route in routes:
        if route.is_catch_all:
            continue
        values = tags.get(route.tag)
        if values is None:
            continue
        if not isinstance(values, list | tuple):
            values = [values]
        if route.equals in {str(value) for value in values}:
            matched.append(route)
    if not matched:
        matched = [route for route in routes if route.is_catch_all]
    return matched
