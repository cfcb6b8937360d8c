"""The digest's HTML laid out by a real browser (headless Chromium) at a phone-to-laptop width: nothing may
overflow sideways, however long the values SES hands us (a diagnostic with no spaces, a long address)."""

from __future__ import annotations

import json
import re
import subprocess
from datetime import date, datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from bouncehouse.digest.chart import rates_chart_png
from bouncehouse.digest.compose import compose_digest
from bouncehouse.digest.data import (
    BOUNCE_PAUSE,
    BOUNCE_REVIEW,
    COMPLAINT_PAUSE,
    COMPLAINT_REVIEW,
    AccountStats,
    DayPoint,
    DigestRow,
    DomainRate,
    RateCheck,
    RouteDay,
    Suppression,
)
from bouncehouse.digest.routes import Route

pytestmark = pytest.mark.xdist_group("digest-browser")

WIDTH = 640
DAY = date(2026, 11, 21)
LONG_DIAGNOSTIC = "smtp;550-5.1.1_" + "x" * 285  # 300 characters, no space to break at
LONG_ADDRESS = "a.very.long.local.part.that.keeps.going.and.going@subdomain.of.a.rather.long.example.com"
LONG_SUBJECT = "Your invoice " + "INV-2026-11-0000042-" * 8 + "is ready"
# The worst-domains table and the newly suppressed list quote domains and addresses of their own.
LONG_DOMAIN = "mail." + "x" * 70 + ".subdomain-without-a-break.example.com"
SUPPRESSED = [f"suppressed.recipient.number.{n:02d}.with.a.long.name@{LONG_DOMAIN}" for n in range(23)]
# Written into the page's title once laid out, then read back from --dump-dom.
MEASURE = """<script>
window.addEventListener("load", () => {
  const tables = [...document.querySelectorAll("table")].map((t) => t.scrollWidth);
  document.title = "MEASURED " + JSON.stringify({document: document.documentElement.scrollWidth, tables});
});
</script>"""


def _row(recipient: str, status: str, diagnostic: str | None, subject: str, hour: int) -> DigestRow:
    at = datetime.combine(DAY, datetime.min.time()) + timedelta(hours=hour)
    bounce = ("Permanent", "General") if status == "hard_bounced" else ("Transient", "MailboxFull")
    complained = status == "complained"
    return DigestRow(
        recipient=recipient,
        status=status,
        status_at=at + timedelta(minutes=3),
        bounce_type=None if complained else bounce[0],
        bounce_sub_type=None if complained else bounce[1],
        diagnostic_code=diagnostic,
        complaint_feedback_type="abuse" if complained else None,
        sent_at=at,
        subject=subject,
        message_id=f"m-{hour}",
        tags={"user_type": ["customer"], "campaign": ["november-invoices-" + "long" * 10]},
    )


def realistic_digest(diagnostic: str = LONG_DIAGNOSTIC, suppressed: int = len(SUPPRESSED)) -> bytes:
    """A customers digest with long values in every column, as an .eml's bytes (with the first
    ``suppressed`` of SUPPRESSED newly suppressed)."""
    series = [
        DayPoint(DAY - timedelta(days=29 - i), 1000 + 20 * i, 12 + i % 5, i % 3, (12 + i % 5) / 1000, (i % 3) / 1000)
        for i in range(30)
    ]  # fmt: skip
    account = AccountStats(
        day=DAY,
        window_start=DAY - timedelta(days=6),
        window_sent=8000,
        window_hard_bounced=120,
        window_complained=9,
        bounce=RateCheck("Bounce rate", 120 / 8000, BOUNCE_REVIEW, BOUNCE_PAUSE),
        complaint=RateCheck("Complaint rate", 9 / 8000, COMPLAINT_REVIEW, COMPLAINT_PAUSE),
        series=series,
    )
    rows = [
        _row(LONG_ADDRESS, "hard_bounced", diagnostic, LONG_SUBJECT, 9),
        _row("full@other.example", "soft_bounced", "smtp; 452 4.2.2 The email account that you tried to "
             "reach is over quota. Please direct the recipient to https://support.example.com/mail/?p=" + "q" * 80,
             "Welcome", 10),
        _row("angry@trial.example", "complained", None, "Weekly news", 11),
    ]  # fmt: skip
    route_day = RouteDay(
        route=Route("customers", ("cs@example.com",), "user_type", "customer"),
        rows=rows,
        sent=1180,
        delivered=1160,
        # The route's 14 days: the rates table's "7 days before" and change columns are filled in.
        series=tuple(
            DayPoint(p.day, p.sent // 2, p.hard_bounced // 2, p.complained // 2, None, None) for p in series[-14:]
        ),
        domains=(
            DomainRate(LONG_DOMAIN, 420, 9, 1),
            DomainRate("gmail.com", 300, 2, 0),
            DomainRate("outlook.com", 180, 0, 1),
        ),
        new_suppressions=tuple(
            Suppression(address, "soft_bounce" if n % 3 else "hard_bounce", datetime(2026, 11, 21, 9, n),
                        datetime(2026, 12, 5, 9, n) if n % 3 else None)
            for n, address in enumerate(SUPPRESSED[:suppressed])
        ),
    )  # fmt: skip
    skipped = {
        "gone-admin-with-a-long-name@customers.example.com": Suppression(
            "gone-admin-with-a-long-name@customers.example.com",
            "hard_bounce",
            datetime(2026, 11, 10, 8, 1),
            None,
        )
    }
    message = compose_digest(
        route_day,
        account,
        sender="bouncehouse@example.com",
        recipients=["cs@example.com"],
        skipped=skipped,
        chart_png=rates_chart_png(series),
        generated_at=datetime(2026, 11, 22, 6, 0),
    )
    return message.as_bytes()


def page_from_eml(eml: bytes, folder: Path) -> Path:
    """The .eml's HTML part as a file, its cid: image saved beside it, as a mail client would show it."""
    message = message_from_bytes(eml, policy=policy.default)
    html = message.get_body(preferencelist=("html",)).get_content()
    for part in message.walk():
        if part.get_content_maintype() == "image":
            cid = part["Content-ID"].strip("<>")
            (folder / "chart.png").write_bytes(part.get_content())
            html = html.replace(f"cid:{cid}", "chart.png")
    page = folder / "digest.html"
    page.write_text(html, encoding="utf-8")
    return page


def measure(chromium: str, page: Path) -> dict[str, object]:
    """document.documentElement's and each table's scrollWidth, laid out at WIDTH px."""
    measured = page.with_name("measured.html")
    measured.write_text(
        page.read_text(encoding="utf-8").replace("</body>", MEASURE + "</body>"), encoding="utf-8"
    )
    result = subprocess.run(
        [
            chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
            "--virtual-time-budget=2000", f"--window-size={WIDTH},3000", "--dump-dom", measured.as_uri(),
        ],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    found = re.search(r"<title>MEASURED (.*?)</title>", result.stdout)
    assert found, f"no measurement in the dumped DOM: {result.stderr[-2000:]}"
    return json.loads(found.group(1).replace("&quot;", '"'))


def test_digest_fits_640px_without_sideways_scrolling(chromium: str, tmp_path: Path) -> None:
    page = page_from_eml(realistic_digest(), tmp_path)
    html = page.read_text(encoding="utf-8")
    assert LONG_DIAGNOSTIC in html and LONG_ADDRESS in html  # the long values are really there
    # And the route's rates, worst domains and newly suppressed addresses (capped) with them.
    assert "Bounce rate, this route" in html and "Worst domains by rate" in html
    assert LONG_DOMAIN in html and SUPPRESSED[19] in html and "and 3 more" in html
    widths = measure(chromium, page)
    assert widths["document"] <= WIDTH, widths
    assert all(width <= WIDTH for width in widths["tables"]), widths  # type: ignore[attr-defined]
