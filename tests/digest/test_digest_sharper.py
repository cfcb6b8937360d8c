"""The digest's route figures on marts built by dbt from hand-made events (sharper_scenario.py): the route's
own 7-day rates beside the account's, both against the week before, the worst domains by rate, the
addresses newly suppressed on the day (capped), all escaped in HTML; and the sends-unknown rule for each."""

from __future__ import annotations

from email import message_from_bytes, policy
from html import escape
from html.parser import HTMLParser
from pathlib import Path

import pytest
from bouncehouse import warehouse
from bouncehouse.digest import send_digests
from bouncehouse.digest.data import load_digest_data
from bouncehouse.digest.routes import parse_routes
from digest_scenario import DAY, make_settings
from ses_events import load
from sharper_scenario import (
    BULK_BOUNCED,
    HOSTILE_DIAGNOSTIC,
    HOSTILE_DOMAIN,
    ROUTES_YAML,
    UNKNOWN_ROUTES_YAML,
    pruned_events,
    sends_unknown_events,
    sharper_events,
)

pytestmark = pytest.mark.xdist_group("digest")


def _build(home: Path, events: list, routes_yaml: str) -> Path:
    from bouncehouse.transform import transform

    path = home / "warehouse.duckdb"
    load(path, events)
    (home / "routes.yml").write_text(routes_yaml)
    transform(make_settings(home, path))
    return path


@pytest.fixture(scope="module")
def sharper_warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _build(tmp_path_factory.mktemp("digest-sharper"), sharper_events(), ROUTES_YAML)


@pytest.fixture(scope="module")
def sharper(sharper_warehouse: Path) -> dict[str, tuple[str, str]]:
    """The scenario's digests: route -> (plain text, HTML)."""
    home = sharper_warehouse.parent
    send_digests(make_settings(home, sharper_warehouse))
    return _outbox(home / "outbox")


@pytest.fixture(scope="module")
def unknown(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[str, str]]:
    home = tmp_path_factory.mktemp("digest-sharper-unknown")
    path = _build(home, sends_unknown_events(), UNKNOWN_ROUTES_YAML)
    send_digests(make_settings(home, path))
    return _outbox(home / "outbox")


def _outbox(outbox: Path) -> dict[str, tuple[str, str]]:
    found = {}
    for path in sorted(outbox.glob("*.eml")):
        message = message_from_bytes(path.read_bytes(), policy=policy.default)
        text = message.get_body(preferencelist=("plain",)).get_content()
        html = message.get_body(preferencelist=("html",)).get_content()
        found[str(message["X-Bouncehouse-Route"])] = (text.replace("\r\n", "\n"), html.replace("\r\n", "\n"))
    return found


def _block(text: str, heading: str) -> list[str]:
    """The lines of the plain text's section that starts with ``heading``, up to the blank line."""
    start = text.index(heading)
    return text[start:].split("\n\n", 1)[0].splitlines()


class _Tables(HTMLParser):
    """Every table row of an HTML part, as its cells' text (entities decoded)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.rows: list[list[str]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def _rows(html: str) -> list[list[str]]:
    parser = _Tables()
    parser.feed(html)
    return parser.rows


def test_route_rates_beside_the_accounts_with_the_trend(sharper: dict[str, tuple[str, str]]) -> None:
    text, html = sharper["growth"]
    assert _block(text, "This route, last 7 days") == [
        "This route, last 7 days (2026-11-15 to 2026-11-21, 100 sent; 50 sent the 7 days before):",
        "  Bounce rate: 4.0% [NEAR REVIEW LEVEL]",
        "    against the 7 days before: up from 2.0% to 4.0% (+2.0 pts)",
        "  Complaint rate: 1.0% [OVER PAUSE LEVEL]",
        "    against the 7 days before: down from 2.0% to 1.0% (-1.0 pts)",
    ]
    account = [
        "Account-wide, last 7 days (2026-11-15 to 2026-11-21, 135 sent; 60 sent the 7 days before):",
        "  Bounce rate: 20.0% [OVER PAUSE LEVEL]  (SES review 5.0%, pause 10.0%)",
        "    against the 7 days before: up from 1.7% to 20.0% (+18.3 pts)",
        "  Complaint rate: 0.74% [OVER PAUSE LEVEL]  (SES review 0.10%, pause 0.50%)",
        "    against the 7 days before: down from 1.7% to 0.74% (-0.93 pts)",
    ]
    assert _block(text, "Account-wide, last 7 days") == account
    rows = _rows(html)
    assert ["Bounce rate, this route", "4.0%", "2.0%", "▲ up +2.0 pts", "NEAR REVIEW LEVEL"] in rows
    assert ["Bounce rate, account-wide", "20.0%", "1.7%", "▲ up +18.3 pts", "OVER PAUSE LEVEL"] in rows
    assert ["Complaint rate, this route", "1.0%", "2.0%", "▼ down -1.0 pts", "OVER PAUSE LEVEL"] in rows
    assert ["Complaint rate, account-wide", "0.74%", "1.7%", "▼ down -0.93 pts", "OVER PAUSE LEVEL"] in rows
    assert (
        "this route: 100 sent (50 the 7 days before); account-wide: 135 sent (60 the 7 days before)." in html
    )

    # Every route's digest carries the same account figures beside its own.
    bulk_text, bulk_html = sharper["bulk"]
    assert _block(bulk_text, "Account-wide, last 7 days") == account
    assert _block(bulk_text, "This route, last 7 days")[1:] == [
        "  Bounce rate: 92.0% [OVER PAUSE LEVEL]",
        "    against the 7 days before: no comparison: nothing sent in the 7 days before",
        "  Complaint rate: 0.00% [OK]",
        "    against the 7 days before: no comparison: nothing sent in the 7 days before",
    ]
    assert ["Bounce rate, this route", "92.0%", "n/a", "n/a", "OVER PAUSE LEVEL"] in _rows(bulk_html)
    assert (
        "Against the 7 days before, this route: no comparison: nothing sent in the 7 days before."
        in bulk_html
    )
    other_text, _ = sharper["everything-else"]
    assert _block(other_text, "This route, last 7 days")[1:3] == [
        "  Bounce rate: 0.00% [OK]",
        "    against the 7 days before: unchanged at 0.00%",
    ]


def test_worst_domains_by_rate_need_enough_sends(sharper: dict[str, tuple[str, str]]) -> None:
    text, html = sharper["growth"]
    # mid.example's 5% complaint rate is 50x SES's review level, big.example's 7.5% bounce rate 1.5x;
    # tiny.example's 100% is one send; oasl@big.example (OnAccountSuppressionList) is not in the rate.
    assert _block(text, "Worst domains by rate") == [
        "Worst domains by rate, this route's recipients sent on 2026-11-21 (at least 20 sent):",
        "  mid.example: bounce rate 0.00% (0 of 20), complaint rate 5.0% (1)",
        "  big.example: bounce rate 7.5% (3 of 40), complaint rate 0.00% (0)",
    ]
    rows = _rows(html)
    assert rows[rows.index(["Domain", "Sent", "Bounce rate", "Complaint rate"]) + 1 :][:2] == [
        ["mid.example", "20", "0.00% (0)", "5.0% (1)"],
        ["big.example", "40", "7.5% (3)", "0.00% (0)"],
    ]
    other_text, _ = sharper["everything-else"]
    assert _block(other_text, "Worst domains by rate")[1] == (
        "  None: no domain with at least 20 recipients sent that day bounced or complained."
    )


def test_newly_suppressed_addresses_with_reason(sharper: dict[str, tuple[str, str]]) -> None:
    text, html = sharper["growth"]
    # was@big.example complained on the day but was suppressed since its hard bounce 10 days before.
    assert _block(text, "Newly suppressed on") == [
        "Newly suppressed on 2026-11-21 (6):",
        "- b0@big.example  hard bounce, at 09:10",
        "- b1@big.example  hard bounce, at 09:11",
        "- b2@big.example  hard bounce, at 09:12",
        "- oasl@big.example  hard bounce, at 09:13",
        "- t@tiny.example  hard bounce, at 09:14",
        "- c@mid.example  complaint, at 11:00",
    ]
    assert "Newly suppressed on 2026-11-21 (6)" in html and "<b>t@tiny.example</b>" in html
    other_text, other_html = sharper["everything-else"]
    # The third soft bounce within 7 days; it expires 14 days after it. The digest's own email: nowhere.
    assert _block(other_text, "Newly suppressed on") == [
        "Newly suppressed on 2026-11-21 (1):",
        "- soft@other.example  soft bounce, at 10:30, until 2026-12-05",
    ]
    for route_text, route_html in sharper.values():
        assert "lost@ops.example" not in route_text and "lost@ops.example" not in route_html


def test_a_long_list_of_newly_suppressed_is_capped(sharper: dict[str, tuple[str, str]]) -> None:
    text, html = sharper["bulk"]
    lines = _block(text, "Newly suppressed on")
    assert lines[0] == f"Newly suppressed on 2026-11-21 ({BULK_BOUNCED}):"
    assert lines[1:-1] == [f"- r{n:02d}@{HOSTILE_DOMAIN}  hard bounce, at 12:{n:02d}" for n in range(20)]
    assert lines[-1] == "... and 3 more: query suppression_list for the full list."
    assert "... and 3 more: query suppression_list for the full list." in html
    assert (
        f"<b>{escape(f'r19@{HOSTILE_DOMAIN}')}</b>" in html
        and escape(f"r20@{HOSTILE_DOMAIN}") not in html[: html.index("Bounced and complained recipients")]
    )


def test_hostile_domain_and_diagnostic_are_escaped_in_every_new_section(
    sharper: dict[str, tuple[str, str]],
) -> None:
    text, html = sharper["bulk"]
    escaped = escape(HOSTILE_DOMAIN)
    assert escaped == "evil&amp;co.example&quot;&lt;svg/onload=alert(1)"
    assert "<svg" not in html and "<script>" not in html
    assert HOSTILE_DOMAIN not in html
    # The worst-domains table and the newly suppressed list quote it, escaped; the plain text as it is.
    assert [HOSTILE_DOMAIN, "25", "92.0% (23)", "0.00% (0)"] in _rows(html)
    assert f"<b>{escape(f'r00@{HOSTILE_DOMAIN}')}</b>" in html
    assert f"  {HOSTILE_DOMAIN}: bounce rate 92.0% (23 of 25), complaint rate 0.00% (0)" in text
    assert f"- r00@{HOSTILE_DOMAIN}  hard bounce, at 12:00" in text
    assert escape(HOSTILE_DIAGNOSTIC) in html and HOSTILE_DIAGNOSTIC in text


def test_route_figures_match_the_marts_for_a_single_route(sharper_warehouse: Path) -> None:
    """With one catch-all route, the route's own figures are the account's: the rate rule in data.py is
    deliverability_daily's and deliverability_by_domain_daily's."""
    routes = parse_routes({"routes": [{"name": "all", "admins": ["a@example.com"]}]})
    with warehouse.session(sharper_warehouse) as con:
        data = load_digest_data(con, routes, DAY.date())
        by_domain = con.execute(
            "select domain, sent, bounce_rate, complaint_rate from deliverability_by_domain_daily where day = ?",
            [DAY.date()],
        ).fetchall()
    [route] = data.routes
    assert route.window is not None and route.previous_window is not None
    assert route.window.checks[0].value == data.account.bounce.value == 27 / 135
    assert route.window.checks[1].value == data.account.complaint.value == 1 / 135
    assert route.previous_window.sent == data.account.previous_window.sent == 60
    assert route.trends == data.account.trends
    assert sorted((d.domain, d.sent, d.bounce_rate, d.complaint_rate) for d in route.domains) == sorted(
        by_domain
    )


def test_route_rates_and_trend_need_known_sends(unknown: dict[str, tuple[str, str]]) -> None:
    text, html = unknown["customers"]
    # Its own window's sends are known: its rate stands, though the account's does not.
    assert _block(text, "This route, last 7 days") == [
        "This route, last 7 days (2026-11-15 to 2026-11-21, 20 sent; 3 sent the 7 days before):",
        "  Bounce rate: 5.0% [OVER REVIEW LEVEL]",
        "    against the 7 days before: no comparison: sends not known for 2026-11-12",
        "  Complaint rate: 0.00% [OK]",
        "    against the 7 days before: no comparison: sends not known for 2026-11-12",
    ]
    assert _block(text, "Account-wide, last 7 days")[1:] == [
        "  Bounce rate: n/a [SENDS UNKNOWN]  (SES review 5.0%, pause 10.0%)",
        "    against the 7 days before: no comparison: sends not known for 2026-11-12, 2026-11-21",
        "  Complaint rate: n/a [SENDS UNKNOWN]  (SES review 0.10%, pause 0.50%)",
        "    against the 7 days before: no comparison: sends not known for 2026-11-12, 2026-11-21",
    ]
    rows = _rows(html)
    assert ["Bounce rate, this route", "5.0%", "n/a", "n/a", "OVER REVIEW LEVEL"] in rows
    assert ["Bounce rate, account-wide", "n/a", "n/a", "n/a", "SENDS UNKNOWN"] in rows
    assert "Against the 7 days before, this route: no comparison: sends not known for 2026-11-12." in html

    text, html = unknown["trials"]
    lines = _block(text, "This route, last 7 days")
    assert lines[1:] == [
        "  Bounce rate: n/a [SENDS UNKNOWN]",
        "    against the 7 days before: no comparison: sends not known for 2026-11-21",
        "  Complaint rate: n/a [SENDS UNKNOWN]",
        "    against the 7 days before: no comparison: sends not known for 2026-11-21",
        "  Note: This route's sends are not known for 2026-11-21, so its rates are not shown (see the note above).",
    ]
    assert ["Bounce rate, this route", "n/a", "0.00%", "n/a", "SENDS UNKNOWN"] in _rows(html)
    # The day's two bounces would make trial.example 100%: no domain rate on a day of unknown sends.
    assert _block(text, "Worst domains by rate")[1] == (
        "  Not shown: this route's sends on 2026-11-21 are not known, so a domain's rate would overstate."
    )
    assert "100" not in "\n".join(lines) and "OVER PAUSE LEVEL" not in html
    # Suppression needs no sends: the two hard bounces are newly suppressed all the same.
    assert _block(text, "Newly suppressed on")[0] == "Newly suppressed on 2026-11-21 (2):"


def test_a_route_day_with_pruned_sends_has_no_rate(tmp_path: Path) -> None:
    from bouncehouse.prune import prune
    from bouncehouse.transform import transform

    path = _build(tmp_path, pruned_events(), UNKNOWN_ROUTES_YAML)
    settings = make_settings(tmp_path, path, retention_days=14)
    assert prune(settings)["recipients"] == 20
    transform(settings)
    with warehouse.session(path) as con:
        account_day = con.execute(
            "select sent, rate_hard_bounced, sends_known from deliverability_daily where day = '2026-11-08'"
        ).fetchone()
    assert account_day == (21, 1, True)  # prune's counts keep the account's figures whole
    send_digests(settings)
    text, html = _outbox(tmp_path / "outbox")["customers"]
    assert _block(text, "This route, last 7 days")[:3] == [
        "This route, last 7 days (2026-11-15 to 2026-11-21, 10 sent; 1 sent the 7 days before):",
        "  Bounce rate: 0.00% [OK]",
        "    against the 7 days before: no comparison: sends not known for 2026-11-08",
    ]
    assert _block(text, "Account-wide, last 7 days")[2] == (
        "    against the 7 days before: down from 4.8% to 0.00% (-4.8 pts)"
    )


def test_a_change_too_small_to_show_still_says_which_way() -> None:
    from bouncehouse.digest.data import Trend

    tiny = Trend("Complaint rate", 0.00111, 0.0011, ())
    assert (tiny.direction, tiny.change) == ("up", "+<0.01 pts")
    assert Trend("Bounce rate", 0.02, 0.02, ()).describe() == "unchanged at 2.0%"
    assert Trend("Bounce rate", 0.02, 0.0, ()).describe() == "up from 0.00% to 2.0% (+2.0 pts)"
