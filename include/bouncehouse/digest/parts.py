"""A route's digest as one or more emails: SES takes at most 50 recipients a message, and admins of one
route are not shown to each other unless ``BOUNCEHOUSE_DIGEST_SHOW_ADMINS`` says so.

Every part is the same digest; only its recipients (the envelope, and ``To`` when shown) and its
Message-ID differ. A part with one recipient names them in ``To``; one with several, hidden, says
``To: undisclosed-recipients:;`` and reaches them through the envelope alone, as a Bcc would (no Bcc
header is ever transmitted).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage

# SES: "The message may not include more than 50 recipients, across the To:, CC: and BCC: fields."
RECIPIENTS_PER_EMAIL = 50
UNDISCLOSED = "undisclosed-recipients:;"


@dataclass(frozen=True)
class Part:
    """One email of a route's digest."""

    number: int  # 1-based
    count: int
    recipients: list[str]
    message: EmailMessage
    key: str  # the transport's idempotency key (the outbox's file name)


def split_digest(
    message: EmailMessage, recipients: Sequence[str], key: str, *, show_admins: bool
) -> list[Part]:
    """The digest ``message`` as parts of at most RECIPIENTS_PER_EMAIL recipients each."""
    groups = [
        list(recipients[i : i + RECIPIENTS_PER_EMAIL])
        for i in range(0, len(recipients), RECIPIENTS_PER_EMAIL)
    ]
    if len(groups) == 1:
        return [Part(1, 1, groups[0], _addressed(message, groups[0], show_admins), key)]
    del message["To"]  # the full list, parsed, is most of what a copy would copy
    parts = []
    for number, group in enumerate(groups, start=1):
        part = _addressed(copy.deepcopy(message), group, show_admins)
        suffix = f"part{number}of{len(groups)}"
        local, _, domain = str(message["Message-ID"]).strip("<>").rpartition("@")
        del part["Message-ID"]
        part["Message-ID"] = f"<{local}.{suffix}@{domain}>"
        part["X-Bouncehouse-Part"] = f"{number}/{len(groups)}"
        parts.append(Part(number, len(groups), group, part, f"{key}.{suffix}"))
    return parts


def _addressed(message: EmailMessage, recipients: list[str], show_admins: bool) -> EmailMessage:
    del message["To"]
    message["To"] = ", ".join(recipients) if show_admins or len(recipients) == 1 else UNDISCLOSED
    return message
