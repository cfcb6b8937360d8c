"""One route's digest as an email: plain text and HTML (with the chart inline, cid) alternatives.

Every value that came from an SES event (addresses, diagnostics, subjects, tags) is HTML-escaped; the
route's name and admins come from the routes file and are escaped too.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime
from html import escape

from bouncehouse.config import DIGEST_TAG_NAME, DIGEST_TAG_VALUE
from bouncehouse.digest.data import (
    BOUNCE_PAUSE,
    BOUNCE_REVIEW,
    COMPLAINT_PAUSE,
    COMPLAINT_REVIEW,
    MIN_DOMAIN_SENDS,
    SENDS_UNKNOWN_ADVICE,
    AccountStats,
    DigestRow,
    DomainRate,
    RateCheck,
    RouteDay,
    Suppression,
    Trend,
    Window,
    format_rate,
)

# An email with tens of thousands of rows helps nobody: list the first rows, say how many more.
MAX_ROWS = 500
MAX_NEW_SUPPRESSIONS = 20
BOUNCE_LIMITS, COMPLAINT_LIMITS = (BOUNCE_REVIEW, BOUNCE_PAUSE), (COMPLAINT_REVIEW, COMPLAINT_PAUSE)
STATUS_LABELS = {"hard_bounced": "Hard bounce", "soft_bounced": "Soft bounce", "complained": "Complaint"}
STATUS_COLOURS = {"hard_bounced": "#c0392b", "soft_bounced": "#e67e22", "complained": "#8e44ad"}
# Read on a phone or beside other windows: 640 px wide at most, and long values (a diagnostic with no
# spaces, a long address) wrap anywhere rather than push the page sideways. Both properties, since mail
# clients support one or the other.
MAX_WIDTH_PX = 640
WRAP_ANYWHERE = "overflow-wrap:anywhere;word-break:break-word"
LEVEL_STYLES = {
    "ok": ("#1e7e34", "#e6f4ea", "OK"),
    "near": ("#8a5a00", "#fff4d6", "NEAR REVIEW LEVEL"),
    "review": ("#b34700", "#ffe8d6", "OVER REVIEW LEVEL"),
    "pause": ("#ffffff", "#c0392b", "OVER PAUSE LEVEL"),
    "no data": ("#555555", "#eeeeee", "NO SENDS"),
    "sends unknown": ("#555555", "#eeeeee", "SENDS UNKNOWN"),
}


def route_slug(name: str) -> str:
    """A file- and header-safe form of a route name, unique per name (a short hash keeps it so)."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:40] or "route"
    return f"{slug}-{hashlib.sha1(name.encode()).hexdigest()[:6]}"


def message_key(route_name: str, day_text: str) -> str:
    return f"digest_{day_text}_{route_slug(route_name)}"


def digest_subject(route_day: RouteDay, account: AccountStats) -> str:
    day = account.day.isoformat()
    parts = [
        f"{route_day.hard_bounced} hard bounced",
        f"{route_day.soft_bounced} soft bounced",
        f"{route_day.complained} complained",
    ]
    alert = ""
    levels = {account.bounce.level, account.complaint.level}
    if "pause" in levels:
        alert = "ACTION NEEDED: rate over SES pause level - "
    elif "review" in levels:
        alert = "WARNING: rate over SES review level - "
    elif "near" in levels:
        alert = "Warning: rate near SES review level - "
    return f"[bouncehouse] {alert}{route_day.route.name} digest {day}: {', '.join(parts)}"


TOP_N = 5
# The SMTP enhanced status code (RFC 3463, e.g. 5.1.1) says what went wrong without the server's wording.
# Not \b: servers glue codes to "_" or "-" ("550-5.1.1_..."), and "_" counts as a word character.
_ENHANCED_CODE = re.compile(r"(?<![\w.])([245]\.\d{1,3}\.\d{1,3})(?!\.?\d)")
_BASIC_CODE = re.compile(r"(?<![\w.])([245]\d\d)(?![\w.])")


def diagnostic_key(diagnostic: str) -> str:
    """What a diagnostic is grouped by: its enhanced status code, else its SMTP reply code, else its text."""
    found = _ENHANCED_CODE.search(diagnostic) or _BASIC_CODE.search(diagnostic)
    return found.group(1) if found else diagnostic.strip()[:60]


def top_diagnostics(rows: Sequence[DigestRow]) -> list[tuple[str, int]]:
    """The most frequent diagnostic codes among the day's bounces (complaints have none)."""
    counts = Counter(diagnostic_key(row.diagnostic_code) for row in rows if row.diagnostic_code)
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:TOP_N]


def top_domains(rows: Sequence[DigestRow]) -> list[tuple[str, int]]:
    """The recipient domains with the most bounced or complained recipients that day."""
    counts = Counter(row.recipient.rpartition("@")[2].lower() for row in rows)
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:TOP_N]


def _summary_text(rows: Sequence[DigestRow]) -> list[str]:
    lines = []
    for title, top in (("Top diagnostic codes", top_diagnostics(rows)), ("Top domains", top_domains(rows))):
        if top:
            lines.append(f"{title}: " + ", ".join(f"{key} ({count})" for key, count in top))
    return lines


def _tags_text(tags: Mapping[str, Sequence[str]]) -> str:
    """The message's own tags; SES's automatic ``ses:*`` tags (source IP, configuration set) are noise here."""
    return ", ".join(
        f"{name}={'|'.join(values)}" for name, values in sorted(tags.items()) if not name.startswith("ses:")
    )


def _when(value: datetime | None) -> str:
    return f"{value:%Y-%m-%d %H:%M}" if value else ""


def _type_text(row: DigestRow) -> str:
    if row.status == "complained":
        return row.complaint_feedback_type or "(no feedback type)"
    return " / ".join(part for part in (row.bounce_type, row.bounce_sub_type) if part)


def compose_digest(
    route_day: RouteDay,
    account: AccountStats,
    *,
    sender: str,
    recipients: Sequence[str],
    skipped: Mapping[str, Suppression],
    chart_png: bytes,
    generated_at: datetime,
) -> EmailMessage:
    route = route_day.route
    day_text = account.day.isoformat()
    key = message_key(route.name, day_text)
    domain = sender.rpartition("@")[2] or "bouncehouse.local"

    message = EmailMessage()
    message["Subject"] = digest_subject(route_day, account)
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Date"] = format_datetime(generated_at.replace(tzinfo=UTC))
    # Stable per route and day: a receiving system that dedupes on Message-ID drops a resend.
    message["Message-ID"] = f"<{key}@{domain}>"
    # SES reads this header (and the API's Tags) so the digest's own feedback is excluded from the marts.
    message["X-SES-MESSAGE-TAGS"] = f"{DIGEST_TAG_NAME}={DIGEST_TAG_VALUE}"
    message["X-Bouncehouse-Route"] = route.name
    message["X-Bouncehouse-Digest-Day"] = day_text
    message["Auto-Submitted"] = "auto-generated"

    message.set_content(render_text(route_day, account, skipped, generated_at))
    chart_cid = f"rates-chart.{key}@{domain}"
    message.add_alternative(render_html(route_day, account, skipped, generated_at, chart_cid), subtype="html")
    html_part = message.get_payload()[1]
    html_part.add_related(
        chart_png, maintype="image", subtype="png", cid=f"<{chart_cid}>", filename="rates.png"
    )
    # add_related marks the image an attachment when given a filename; inline is what we mean.
    image = html_part.get_payload()[1]
    image.replace_header("Content-Disposition", 'inline; filename="rates.png"')
    return message


def render_text(
    route_day: RouteDay, account: AccountStats, skipped: Mapping[str, Suppression], generated_at: datetime
) -> str:
    route = route_day.route
    lines = [
        f"Bouncehouse digest for route '{route.name}' ({route.describe()}), {account.day} (UTC)",
        "",
    ]
    for warning in account.warnings:
        lines.append(f"!! {warning}")
    if account.warnings:
        lines.append("")
    if account.sends_notice:
        lines += [f"Note: {account.sends_notice}", ""]
    for address, suppression in sorted(skipped.items()):
        lines.append(f"Note: not sent to {address}: {suppression.describe()}. Fix or replace that address.")
    if skipped:
        lines.append("")
    lines += [
        f"This route on {account.day}:",
        f"  hard bounced: {route_day.hard_bounced}",
        f"  soft bounced: {route_day.soft_bounced}",
        f"  complained:   {route_day.complained}",
        f"  sent that day: {route_day.sent} recipients ({route_day.delivered} delivered so far)",
        "",
        *_route_rates_text(route_day, account),
        f"Account-wide, last 7 days ({account.window_start} to {account.day}, {account.window_sent} sent"
        f"; {account.previous_window.sent} sent the 7 days before):",
    ]
    for check, trend in zip((account.bounce, account.complaint), account.trends, strict=True):
        lines += [
            f"  {check.label}: {format_rate(check.value)} [{LEVEL_STYLES[check.level][2]}]"
            f"  (SES review {format_rate(check.review)}, pause {format_rate(check.pause)})",
            f"    against the 7 days before: {trend.describe()}",
        ]
    lines += ses_figures_text(account)
    lines += ["", "The chart of the last 30 days is in the HTML version of this email.", ""]
    lines += [*_worst_domains_text(route_day, account), ""]
    lines += [*_new_suppressions_text(route_day, account), ""]
    if not route_day.rows:
        lines.append("No bounced or complained recipients on this route that day.")
    else:
        lines += [*_summary_text(route_day.rows), ""]
        lines.append(f"Bounced and complained recipients ({len(route_day.rows)}):")
        for row in route_day.rows[:MAX_ROWS]:
            lines += [
                f"- {row.recipient}  {STATUS_LABELS.get(row.status, row.status)}  {_type_text(row)}",
                f"    at {_when(row.status_at)}; sent {_when(row.sent_at)}; subject: {row.subject or '(none)'}",
            ]
            if row.diagnostic_code:
                lines.append(f"    diagnostic: {row.diagnostic_code}")
            if row.tags:
                lines.append(f"    tags: {_tags_text(row.tags)}")
        if len(route_day.rows) > MAX_ROWS:
            lines.append(
                f"... and {len(route_day.rows) - MAX_ROWS} more: query message_status for the full list."
            )
    lines += ["", f"Generated by bouncehouse at {generated_at:%Y-%m-%d %H:%M} UTC. Times are UTC."]
    return "\n".join(lines) + "\n"


def _route_sends_notice(window: Window, account: AccountStats) -> str | None:
    """Why the route has no 7-day rate; the advice only once, when the account's notice does not give it."""
    if window.sends_known:
        return None
    listed = ", ".join(day.isoformat() for day in window.unknown_days)
    notice = f"This route's sends are not known for {listed}, so its rates are not shown"
    return f"{notice} (see the note above)." if account.sends_notice else f"{notice}: {SENDS_UNKNOWN_ADVICE}."


def _route_rates_text(route_day: RouteDay, account: AccountStats) -> list[str]:
    """The route's own 7-day rates against the 7 days before (none for a RouteDay built without a series)."""
    window, previous, trends = route_day.window, route_day.previous_window, route_day.trends
    if window is None or previous is None or trends is None:
        return []
    lines = [
        f"This route, last 7 days ({window.start} to {window.end}, {window.sent} sent"
        f"; {previous.sent} sent the 7 days before):"
    ]
    for check, trend in zip(window.checks, trends, strict=True):
        lines += [
            f"  {check.label}: {format_rate(check.value)} [{LEVEL_STYLES[check.level][2]}]",
            f"    against the 7 days before: {trend.describe()}",
        ]
    notice = _route_sends_notice(window, account)
    return [*lines, *([f"  Note: {notice}"] if notice else []), ""]


def _domain_text(domain: DomainRate) -> str:
    return (
        f"bounce rate {format_rate(domain.bounce_rate)} ({domain.hard_bounced} of {domain.sent}), "
        f"complaint rate {format_rate(domain.complaint_rate)} ({domain.complained})"
    )


def _no_worst_domains(route_day: RouteDay, account: AccountStats) -> str:
    if not route_day.day_sends_known:
        return f"Not shown: this route's sends on {account.day} are not known, so a domain's rate would overstate."
    return f"None: no domain with at least {MIN_DOMAIN_SENDS} recipients sent that day bounced or complained."


def _worst_domains_text(route_day: RouteDay, account: AccountStats) -> list[str]:
    lines = [
        f"Worst domains by rate, this route's recipients sent on {account.day} (at least {MIN_DOMAIN_SENDS} sent):"
    ]
    worst = route_day.worst_domains
    if not worst:
        return [*lines, f"  {_no_worst_domains(route_day, account)}"]
    return lines + [f"  {domain.domain}: {_domain_text(domain)}" for domain in worst]


def _suppression_text(suppression: Suppression) -> str:
    """The reason, when it started and, for a soft bounce, when it ends."""
    text = suppression.reason.replace("_", " ")
    if suppression.suppressed_at:
        text += f", at {suppression.suppressed_at:%H:%M}"
    if suppression.expires_at:
        text += f", until {suppression.expires_at:%Y-%m-%d}"
    return text


def _more_suppressed(count: int) -> str:
    return f"... and {count} more: query suppression_list for the full list."


def _new_suppressions_text(route_day: RouteDay, account: AccountStats) -> list[str]:
    found = route_day.new_suppressions
    if not found:
        return [f"Newly suppressed on {account.day}: none on this route."]
    lines = [f"Newly suppressed on {account.day} ({len(found)}):"]
    lines += [f"- {item.email}  {_suppression_text(item)}" for item in found[:MAX_NEW_SUPPRESSIONS]]
    if len(found) > MAX_NEW_SUPPRESSIONS:
        lines.append(_more_suppressed(len(found) - MAX_NEW_SUPPRESSIONS))
    return lines


# --- SES's own figures beside ours (SES in the loop) ------------------------------------------------
JUDGED_BY = (
    "SES reviews and pauses the account by its own reputation metrics (Reputation.BounceRate and "
    "Reputation.ComplaintRate), not by Bouncehouse's counts: when the two disagree, SES's figures are "
    "the ones that count."
)
NOT_PULLED = "SES's own figures: not pulled yet (see BOUNCEHOUSE_SES_SYNC)."


def _ses_rows(account: AccountStats) -> list[tuple[str, str, str, str]]:
    """(rate, ours over 7 days, SES's reputation metric, SES's send statistics over 7 days)."""
    ses = account.ses
    assert ses is not None
    return [
        ("Bounce rate", format_rate(account.bounce.value), format_rate(ses.bounce_rate),
         format_rate(ses.window_bounce_rate)),
        ("Complaint rate", format_rate(account.complaint.value), format_rate(ses.complaint_rate),
         format_rate(ses.window_complaint_rate)),
    ]  # fmt: skip


def ses_figures_text(account: AccountStats) -> list[str]:
    if account.ses is None:
        return ["", NOT_PULLED]
    lines = ["", "SES's own figures beside ours (7 days):"]
    for label, ours, reputation, statistics in _ses_rows(account):
        lines.append(
            f"  {label}: ours {ours} | SES reputation {reputation} | SES send statistics {statistics}"
        )
    if account.ses.max_24_hour_send is not None:
        lines.append(
            f"  SES quota: {account.ses.sent_last_24_hours:.0f} of {account.ses.max_24_hour_send:.0f} sends"
            " used in the last 24 hours"
        )
    lines.append(f"  {JUDGED_BY}")
    return lines


def ses_figures_html(account: AccountStats) -> list[str]:
    e = escape
    if account.ses is None:
        return [f'<p style="font-size:12px;color:#777;margin:6px 0 0">{e(NOT_PULLED)}</p>']
    cell = 'style="padding:6px 10px;border-top:1px solid #ddd;text-align:right"'
    rows = "".join(
        f'<tr><td style="padding:6px 10px;border-top:1px solid #ddd">{e(label)}</td><td {cell}>{e(ours)}</td>'
        f"<td {cell}><b>{e(reputation)}</b></td><td {cell}>{e(statistics)}</td></tr>"
        for label, ours, reputation, statistics in _ses_rows(account)
    )
    return [
        '<h2 style="font-size:15px;margin:18px 0 6px">SES\'s own figures beside ours</h2>',
        '<table style="border-collapse:collapse;width:100%;font-size:14px"><tr style="background:#f0f0f0">'
        '<th style="text-align:left;padding:6px 10px">Rate</th><th style="padding:6px 10px">Ours, 7 days</th>'
        '<th style="padding:6px 10px">SES reputation</th><th style="padding:6px 10px">SES send statistics, 7 days</th>'
        f"</tr>{rows}</table>",
        f'<p style="font-size:12px;color:#555;margin:4px 0 0"><b>{e(JUDGED_BY)}</b></p>',
    ]


def _badge(check: RateCheck) -> str:
    colour, background, text = LEVEL_STYLES[check.level]
    return (
        f'<span style="display:inline-block;padding:2px 8px;border-radius:3px;font-weight:bold;font-size:12px;'
        f'color:{colour};background:{background}">{escape(text)}</span>'
    )


def _stat(label: str, value: int, colour: str) -> str:
    return (
        '<td style="padding:10px 14px;border:1px solid #ddd;text-align:center;width:25%">'
        f'<div style="font-size:26px;font-weight:bold;color:{colour if value else "#999999"}">{value}</div>'
        f'<div style="font-size:12px;color:#555">{escape(label)}</div></td>'
    )


def render_html(
    route_day: RouteDay,
    account: AccountStats,
    skipped: Mapping[str, Suppression],
    generated_at: datetime,
    chart_cid: str,
) -> str:
    parts = [
        *_html_header(route_day, account),
        *_html_warnings(account),
        *_html_sends_notice(account),
        *_html_skipped(skipped),
        *_html_counts(route_day, account),
        *_html_rates(route_day, account),
        *ses_figures_html(account),
        *_html_chart(chart_cid),
        *_html_worst_domains(route_day, account),
        *_html_new_suppressions(route_day, account),
        *_html_recipients(route_day),
        *_html_footer(generated_at),
    ]
    return "\n".join(parts)


def _html_header(route_day: RouteDay, account: AccountStats) -> list[str]:
    route = route_day.route
    e = escape
    return [
        "<!DOCTYPE html>",
        '<html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">'
        "<title>Bouncehouse digest</title></head>",
        '<body style="margin:0;padding:8px;background:#f5f5f5;font-family:Helvetica,Arial,sans-serif;color:#222">',
        f'<div style="max-width:{MAX_WIDTH_PX}px;width:100%;box-sizing:border-box;margin:0 auto;background:#fff;'
        f'padding:16px;border:1px solid #ddd;{WRAP_ANYWHERE}">',
        f'<h1 style="font-size:20px;margin:0 0 4px">Bounce digest: {e(route.name)}, {e(account.day.isoformat())}</h1>',
        f'<p style="margin:0 0 16px;color:#555;font-size:13px">Route for {e(route.describe())}. '
        "UTC day; all times UTC.</p>",
    ]


def _html_warnings(account: AccountStats) -> list[str]:
    """One banner per rate at or near an SES level, coloured as its badge."""
    banners = []
    for check in (account.bounce, account.complaint):
        if check.warning:
            colour, background, _ = LEVEL_STYLES[check.level]
            banners.append(
                f'<div style="padding:10px 14px;margin:0 0 12px;font-weight:bold;color:{colour};'
                f'background:{background};border-left:6px solid #c0392b">&#9888; {escape(check.warning)}</div>'
            )
    return banners


def _html_sends_notice(account: AccountStats) -> list[str]:
    if not account.sends_notice:
        return []
    return [
        '<div style="padding:10px 14px;margin:0 0 12px;background:#eeeeee;border-left:6px solid #555555">'
        f"<b>No rates: the sends are not known.</b> {escape(account.sends_notice)}</div>"
    ]


def _html_skipped(skipped: Mapping[str, Suppression]) -> list[str]:
    """The route's admins this digest was not sent to, and how to get them back."""
    if not skipped:
        return []
    items = "".join(
        f"<li><b>{escape(address)}</b> was not sent this digest: {escape(suppression.describe())}.</li>"
        for address, suppression in sorted(skipped.items())
    )
    return [
        '<div style="padding:10px 14px;margin:0 0 12px;background:#fff4d6;border-left:6px solid #e0a800">'
        f'<b>Admin address skipped</b><ul style="margin:6px 0 0">{items}</ul>'
        '<div style="font-size:12px;margin-top:4px">Fix or replace the address in the routes file, or lift it '
        "in the manual_suppressions seed once it works again.</div></div>"
    ]


def _html_counts(route_day: RouteDay, account: AccountStats) -> list[str]:
    """The route's own figures for the day."""
    return [
        f'<h2 style="font-size:15px;margin:16px 0 6px">This route on {escape(account.day.isoformat())}</h2>',
        '<table style="border-collapse:collapse;width:100%"><tr>',
        _stat("hard bounced", route_day.hard_bounced, "#c0392b"),
        _stat("soft bounced", route_day.soft_bounced, "#e67e22"),
        _stat("complained", route_day.complained, "#8e44ad"),
        _stat("recipients sent that day", route_day.sent, "#2c3e50"),
        "</tr></table>",
        f'<p style="font-size:12px;color:#555;margin:4px 0 0">{route_day.delivered} of the day\'s '
        f"{route_day.sent} recipients delivered so far.</p>",
    ]


CELL = "padding:6px 8px;border-top:1px solid #ddd"
TREND_STYLES = {
    "up": ("#c0392b", "&#9650; up"),
    "down": ("#1e7e34", "&#9660; down"),
    "unchanged": ("#555555", "="),
}


def _trend_cell(trend: Trend | None) -> str:
    """The change against the 7 days before: arrow, word and points (up is worse, so red)."""
    if trend is None or trend.direction is None:
        return f'<td style="{CELL};text-align:right;color:#777">n/a</td>'
    colour, arrow = TREND_STYLES[trend.direction]
    return (
        f'<td style="{CELL};text-align:right;color:{colour};font-weight:bold;white-space:nowrap">'
        f"{arrow} {escape(trend.change)}</td>"
    )


def _rate_row(label: str, check: RateCheck, trend: Trend | None) -> str:
    before = format_rate(trend.previous) if trend else "n/a"
    return (
        f'<tr><td style="{CELL}">{escape(label)}</td>'
        f'<td style="{CELL};text-align:right;font-weight:bold;white-space:nowrap">{escape(format_rate(check.value))}</td>'
        f'<td style="{CELL};text-align:right;white-space:nowrap">{escape(before)}</td>'
        f'{_trend_cell(trend)}<td style="{CELL}">{_badge(check)}</td></tr>'
    )


@dataclass(frozen=True)
class _Scope:
    """Whose rates a row of the rates table shows: the route's or the account's."""

    who: str
    window: Window
    previous: Window
    checks: tuple[RateCheck, RateCheck]
    trends: tuple[Trend, Trend]


def _rate_scopes(route_day: RouteDay, account: AccountStats) -> list[_Scope]:
    """The route (when it has a series), then the account."""
    scopes = []
    window, previous, trends = route_day.window, route_day.previous_window, route_day.trends
    if window is not None and previous is not None and trends is not None:
        scopes.append(_Scope("this route", window, previous, window.checks, trends))
    account_checks = (account.bounce, account.complaint)
    return [
        *scopes,
        _Scope("account-wide", account.window, account.previous_window, account_checks, account.trends),
    ]


def _rate_notes(route_day: RouteDay, account: AccountStats) -> list[str]:
    """SES's limits, and why a rate or a comparison is missing."""
    notes = [
        f"SES's limits apply to the whole account: bounce rate {format_rate(BOUNCE_LIMITS[0])} review, "
        f"{format_rate(BOUNCE_LIMITS[1])} pause; complaint rate {format_rate(COMPLAINT_LIMITS[0])} review, "
        f"{format_rate(COMPLAINT_LIMITS[1])} pause. A route's status shows where its own rate stands."
    ]
    window = route_day.window
    notice = _route_sends_notice(window, account) if window is not None else None
    if notice:
        notes.append(notice)
    for scope in _rate_scopes(route_day, account):
        if scope.trends[0].direction is None:
            notes.append(f"Against the 7 days before, {scope.who}: {scope.trends[0].describe()}.")
    return notes


def _html_rates(route_day: RouteDay, account: AccountStats) -> list[str]:
    """The route's and the account's 7-day rates against the 7 days before, and SES's review and pause levels."""
    e = escape
    scopes = _rate_scopes(route_day, account)
    rows = [
        _rate_row(f"{label}, {scope.who}", scope.checks[index], scope.trends[index])
        for index, label in enumerate(("Bounce rate", "Complaint rate"))
        for scope in scopes
    ]
    sent = "; ".join(
        f"{scope.who}: {scope.window.sent} sent ({scope.previous.sent} the 7 days before)" for scope in scopes
    )
    previous = account.previous_window
    return [
        '<h2 style="font-size:15px;margin:18px 0 6px">Rates, last 7 days '
        f"({e(account.window_start.isoformat())} to {e(account.day.isoformat())}) against the 7 days before "
        f"({e(previous.start.isoformat())} to {e(previous.end.isoformat())})</h2>",
        f'<p style="font-size:12px;color:#555;margin:0 0 4px">{e(sent)}.</p>',
        '<table style="border-collapse:collapse;width:100%;font-size:14px">',
        '<tr style="background:#f0f0f0"><th style="text-align:left;padding:6px 8px">Rate</th>'
        '<th style="padding:6px 8px">7 days</th><th style="padding:6px 8px">7 days before</th>'
        '<th style="padding:6px 8px">Change</th><th style="padding:6px 8px">Status</th></tr>',
        *rows,
        "</table>",
        *(
            f'<p style="font-size:12px;color:#555;margin:4px 0 0">{e(note)}</p>'
            for note in _rate_notes(route_day, account)
        ),
    ]


def _html_worst_domains(route_day: RouteDay, account: AccountStats) -> list[str]:
    """The route's recipient domains of the day's sends with the worst rates (MIN_DOMAIN_SENDS sends or more)."""
    e = escape
    parts = [
        f'<h2 style="font-size:15px;margin:18px 0 6px">Worst domains by rate, sent on {e(account.day.isoformat())}</h2>',
    ]
    worst = route_day.worst_domains
    if not worst:
        return [
            *parts,
            f'<p style="font-size:13px;color:#555">{e(_no_worst_domains(route_day, account))}</p>',
        ]
    head = 'style="padding:6px 8px;text-align:right"'
    rows = "".join(
        f'<tr><td style="{CELL};{WRAP_ANYWHERE}">{e(d.domain)}</td><td style="{CELL};text-align:right">{d.sent}</td>'
        f'<td style="{CELL};text-align:right"><b>{e(format_rate(d.bounce_rate))}</b> ({d.hard_bounced})</td>'
        f'<td style="{CELL};text-align:right"><b>{e(format_rate(d.complaint_rate))}</b> ({d.complained})</td></tr>'
        for d in worst
    )
    return [
        *parts,
        f'<p style="font-size:12px;color:#555;margin:0 0 4px">This route\'s recipients sent that day, domains with '
        f"at least {MIN_DOMAIN_SENDS} of them, worst first (the rate nearest its SES review level).</p>",
        '<table style="border-collapse:collapse;width:100%;table-layout:fixed;font-size:13px">'
        '<tr style="background:#f0f0f0"><th style="text-align:left;padding:6px 8px;width:40%">Domain</th>'
        f"<th {head}>Sent</th><th {head}>Bounce rate</th><th {head}>Complaint rate</th></tr>{rows}</table>",
    ]


def _html_new_suppressions(route_day: RouteDay, account: AccountStats) -> list[str]:
    """The addresses whose suppression started that day, the first MAX_NEW_SUPPRESSIONS, then how many more."""
    e = escape
    found = route_day.new_suppressions
    title = f"Newly suppressed on {account.day.isoformat()} ({len(found)})"
    parts = [f'<h2 style="font-size:15px;margin:18px 0 6px">{e(title)}</h2>']
    if not found:
        return [
            *parts,
            '<p style="font-size:13px;color:#555">No address of this route was newly suppressed that day.</p>',
        ]
    items = "".join(
        f'<li style="margin:2px 0;{WRAP_ANYWHERE}"><b>{e(item.email)}</b> '
        f'<span style="color:#555">{e(_suppression_text(item))}</span></li>'
        for item in found[:MAX_NEW_SUPPRESSIONS]
    )
    if len(found) > MAX_NEW_SUPPRESSIONS:
        items += f'<li style="margin:2px 0;color:#555">{e(_more_suppressed(len(found) - MAX_NEW_SUPPRESSIONS))}</li>'
    return [*parts, f'<ul style="font-size:13px;margin:0;padding-left:20px">{items}</ul>']


def _html_chart(chart_cid: str) -> list[str]:
    return [
        f'<p style="margin:14px 0 4px"><img src="cid:{escape(chart_cid)}" alt="Daily bounce and complaint rates, '
        'last 30 days, with SES review and pause levels" width="720" '
        'style="display:block;width:100%;max-width:100%;height:auto;border:1px solid #eee"></p>',
    ]


def _html_recipients(route_day: RouteDay) -> list[str]:
    """The day's bounced and complained recipients, the first MAX_ROWS, then how many more.

    One stacked block per recipient (address and status on one line, the details below, the diagnostic
    on its own full-width line) rather than seven columns, which squeeze long values at 640 px.
    """
    rows = route_day.rows
    parts = [
        f'<h2 style="font-size:15px;margin:18px 0 6px">Bounced and complained recipients ({len(rows)})</h2>'
    ]
    if not rows:
        parts.append(
            '<p style="color:#1e7e34">No bounced or complained recipients on this route that day.</p>'
        )
        return parts
    parts += _html_summary(rows)
    parts.append(
        '<table role="presentation" width="100%" style="border-collapse:collapse;width:100%;'
        'table-layout:fixed;font-size:13px">'
    )
    parts += [_html_recipient_block(row) for row in rows[:MAX_ROWS]]
    parts.append("</table>")
    if len(rows) > MAX_ROWS:
        parts.append(
            f"<p>... and {len(rows) - MAX_ROWS} more: query <code>message_status</code> for the full list.</p>"
        )
    return parts


def _html_summary(rows: Sequence[DigestRow]) -> list[str]:
    """Where the day's bounces come from, above the list: the top diagnostic codes and domains."""
    parts = []
    for title, top in (("Top diagnostic codes", top_diagnostics(rows)), ("Top domains", top_domains(rows))):
        if top:
            items = ", ".join(f"<b>{escape(key)}</b> ({count})" for key, count in top)
            parts.append(
                f'<p style="font-size:13px;margin:2px 0;{WRAP_ANYWHERE}">{escape(title)}: {items}</p>'
            )
    return parts


def _detail(label: str, value: str) -> str:
    """A labelled value on its own line of a recipient's block (empty values are left out)."""
    if not value:
        return ""
    return (
        f'<div style="margin-top:3px;color:#333;{WRAP_ANYWHERE}">'
        f'<span style="color:#777">{escape(label)}:</span> {escape(value)}</div>'
    )


def _html_recipient_block(row: DigestRow) -> str:
    e = escape
    status = STATUS_LABELS.get(row.status, row.status)
    diagnostic = ""
    if row.diagnostic_code:
        diagnostic = (
            '<div style="margin-top:4px;padding:4px 6px;background:#f7f7f7;border-left:3px solid #ddd">'
            f'<code style="font-size:11px;white-space:pre-wrap;{WRAP_ANYWHERE}">{e(row.diagnostic_code)}</code></div>'
        )
    return (
        f'<tr><td style="padding:8px 4px;border-top:1px solid #ddd;vertical-align:top;{WRAP_ANYWHERE}">'
        f'<div><b style="{WRAP_ANYWHERE}">{e(row.recipient)}</b> '
        f'<span style="color:{STATUS_COLOURS.get(row.status, "#222")};font-weight:bold;white-space:nowrap">'
        f'{e(status)}</span> <span style="color:#777;white-space:nowrap">{e(_when(row.status_at))}</span></div>'
        f"{_detail('Type', _type_text(row))}"
        f"{_detail('Sent', _when(row.sent_at))}"
        f"{_detail('Subject', row.subject or '')}"
        f"{_detail('Tags', _tags_text(row.tags))}"
        f"{diagnostic}</td></tr>"
    )


def _html_footer(generated_at: datetime) -> list[str]:
    return [
        f'<p style="font-size:11px;color:#777;margin-top:18px">Generated by bouncehouse at '
        f"{escape(generated_at.strftime('%Y-%m-%d %H:%M'))} UTC. Rates count hard bounces and complaints per send day "
        "across the whole account, as SES's reputation metrics do.</p>",
        "</div></body></html>",
    ]
