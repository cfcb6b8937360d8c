"""The routes file: the shipped example, routing by tag with a catch-all, and every way it can be wrong."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from bouncehouse.digest.routes import Route, load_routes, parse_routes, routes_for
from bouncehouse.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_shipped_example_routes_by_user_type_with_a_catch_all() -> None:
    routes = load_routes(REPO_ROOT / "include" / "admin_routes.yml")
    by_value = {route.equals: route for route in routes if not route.is_catch_all}
    assert set(by_value) == {"customer", "trial", "partner"}
    assert all(route.tag == "user_type" for route in by_value.values())
    assert [route.name for route in routes if route.is_catch_all] == ["everything-else"]
    assert all(route.admins for route in routes)


def test_routing_by_tag_values() -> None:
    customers = Route("customers", ("a@example.com",), tag="user_type", equals="customer")
    vip = Route("vip", ("v@example.com",), tag="tier", equals="gold")
    rest = Route("rest", ("r@example.com",))
    routes = [customers, vip, rest]
    assert routes_for({"user_type": ["customer"]}, routes) == [customers]
    # A tag can carry several values; any of them matches.
    assert routes_for({"user_type": ["trial", "customer"]}, routes) == [customers]
    # A message matching two `when` routes is listed by both, and not by the catch-all.
    assert routes_for({"user_type": ["customer"], "tier": ["gold"]}, routes) == [customers, vip]
    assert routes_for({"user_type": ["trial"]}, routes) == [rest]
    assert routes_for({}, routes) == [rest]
    assert routes_for(None, routes) == [rest]
    # Without a catch-all, an unmatched message goes nowhere.
    assert routes_for({"user_type": ["trial"]}, [customers]) == []


def test_admin_addresses_are_normalised(tmp_path: Path) -> None:
    path = tmp_path / "routes.yml"
    path.write_text('routes:\n  - name: all\n    admins: ["Ops Team <OPS@Example.COM> ", ops@example.com]\n')
    assert load_routes(path)[0].admins == ("ops@example.com",)


BAD_FILES = {
    "not YAML": ("routes: [\n  - name: x\n", "not valid YAML"),
    "top level is a list": ("- name: x\n  admins: [a@example.com]\n", "mapping with a `routes:` list"),
    "empty file": ("", "mapping with a `routes:` list"),
    "no routes": ("routes: []\n", "non-empty list"),
    "route is a string": ("routes:\n  - everyone\n", "route #1 must be a mapping"),
    "missing name": ("routes:\n  - admins: [a@example.com]\n", "needs a `name:`"),
    "missing admins": ("routes:\n  - name: x\n", "needs `admins:`"),
    "bad email": (
        "routes:\n  - name: x\n    admins: [not-an-address]\n",
        "'not-an-address' is not a valid email",
    ),
    "two catch-alls": (
        "routes:\n  - name: a\n    admins: [a@example.com]\n  - name: b\n    admins: [b@example.com]\n",
        "at most one catch-all",
    ),
    "duplicate names": (
        "routes:\n  - name: a\n    admins: [a@example.com]\n    when: {tag: t, equals: v}\n"
        "  - name: a\n    admins: [b@example.com]\n",
        "two routes are named 'a'",
    ),
    "typo in key": ("routes:\n  - name: a\n    admin: [a@example.com]\n", "unknown key(s) admin"),
    "when without equals": (
        "routes:\n  - name: a\n    admins: [a@example.com]\n    when: {tag: t}\n",
        "needs `equals:`",
    ),
    "when is a string": (
        "routes:\n  - name: a\n    admins: [a@example.com]\n    when: user_type\n",
        "must be a mapping",
    ),
    "boolean equals": (
        "routes:\n  - name: a\n    admins: [a@example.com]\n    when: {tag: t, equals: yes}\n",
        "quote it",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_routes_file_raises_one_line_config_error(tmp_path: Path, case: str) -> None:
    text, expected = BAD_FILES[case]
    path = tmp_path / "routes.yml"
    path.write_text(text)
    with pytest.raises(ConfigError) as raised:
        load_routes(path)
    message = str(raised.value)
    assert expected in message
    assert str(path) in message
    assert "\n" not in message


def test_missing_directory_and_binary_routes_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_routes(tmp_path / "nope.yml")
    with pytest.raises(ConfigError, match="is a directory"):
        load_routes(tmp_path)
    binary = tmp_path / "routes.yml"
    binary.write_bytes(b"\xff\xfe\x00routes")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_routes(binary)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_routes_file(tmp_path: Path) -> None:
    path = tmp_path / "routes.yml"
    path.write_text("routes: []\n")
    path.chmod(0)
    with pytest.raises(ConfigError, match="not readable"):
        load_routes(path)


def test_cli_digest_with_unreadable_routes_exits_2_with_one_line(tmp_path: Path) -> None:
    routes = tmp_path / "routes.yml"
    routes.write_text("routes: {oops")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bouncehouse",
            "-q",
            "digest",
            "--routes",
            str(routes),
            "--warehouse",
            str(tmp_path / "w.duckdb"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "not valid YAML" in lines[0] and str(routes) in lines[0]
    assert "Traceback" not in result.stderr
    # Nothing was opened or created on the way to the error.
    assert not (tmp_path / "w.duckdb").exists()


@pytest.mark.parametrize("separator", ["\u2028", "\u2029", "\u0085", "\x1b"])
def test_a_route_name_with_a_line_or_paragraph_separator_is_one_clear_line(
    tmp_path: Path, separator: str
) -> None:
    """Python's email headers break lines at U+2028/U+2029/U+0085: such a name once crashed the digest."""
    path = tmp_path / "routes.yml"
    escaped = f"\\u{ord(separator):04x}"  # a YAML escape: raw C0/C1 characters are not YAML at all
    path.write_text(f'routes:\n  - name: "ops{escaped}team"\n    admins: [a@example.com]\n')
    with pytest.raises(ConfigError, match="one line of printable characters") as caught:
        load_routes(path)
    assert "\n" not in str(caught.value) and separator not in str(caught.value)


def test_a_yaml_alias_bomb_in_admins_fails_at_once_with_one_short_line(tmp_path: Path) -> None:
    """Nine levels of nine aliases: printed whole, the value would be 9**9 strings long."""
    levels = ['a0: &a0 ["x@example.com"]']
    levels += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    path = tmp_path / "routes.yml"
    path.write_text("\n".join(levels) + "\nroutes:\n  - name: bomb\n    admins: [*a9]\n")
    # The top-level anchors are unknown keys, so check the admins message through parse_routes too.

    document = yaml.safe_load(path.read_text())
    with pytest.raises(ConfigError) as caught:
        parse_routes({"routes": document["routes"]})
    assert "each admin must be an email address, got a list" in str(caught.value)
    assert len(str(caught.value)) < 200


def test_a_very_long_bad_address_is_cut_in_the_error(tmp_path: Path) -> None:
    path = tmp_path / "routes.yml"
    path.write_text(f"routes:\n  - name: x\n    admins: [{'n' * 5000}]\n")
    with pytest.raises(ConfigError, match="is not a valid email address") as caught:
        load_routes(path)
    assert len(str(caught.value)) < 300
