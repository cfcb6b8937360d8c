"""How a digest leaves: an outbox folder of .eml files, SMTP, or the SES API.

Each transport sorts a failure into one of three kinds, because that decides whether a retry can
produce a second copy:
- TemporaryFailure: the server certainly did not take the message (4xx reply, connection refused,
  throttled): retry.
- PermanentFailure: it certainly did not take it and a retry will not help (5xx, unverified sender).
- UncertainFailure: the message may have been taken (connection lost during DATA, read timeout on the
  API call): never retried automatically, so it can never produce a double send.
"""

from __future__ import annotations

import logging
import os
import smtplib
import ssl as ssl_lib
from collections.abc import Sequence
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from pathlib import Path
from typing import Any, Protocol

from bouncehouse.config import DIGEST_TAG_NAME, DIGEST_TAG_VALUE, SmtpSettings, load_smtp_settings
from bouncehouse.errors import BouncehouseError, ConfigError

log = logging.getLogger(__name__)


class DeliveryError(BouncehouseError):
    """Base of the three failure kinds below."""


class TemporaryFailure(DeliveryError):
    pass


class PermanentFailure(DeliveryError):
    pass


class UncertainFailure(DeliveryError):
    pass


class Transport(Protocol):
    name: str
    # True when sending the same key twice leaves one copy (so a crash mid-send is safe to redo).
    idempotent: bool

    def send(self, message: EmailMessage, *, sender: str, recipients: Sequence[str], key: str) -> str:
        """Send; return a reference to what was sent (file path, Message-ID, SES MessageId)."""
        ...


class OutboxTransport:
    """One .eml per digest in a folder, named by route and day and written atomically: re-sending
    the same digest replaces the same file, so this transport can never make two copies."""

    name = "outbox"
    idempotent = True

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    def send(self, message: EmailMessage, *, sender: str, recipients: Sequence[str], key: str) -> str:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            target = self.folder / f"{key}.eml"
            tmp = target.with_name(f".{target.name}.tmp")
            tmp.write_bytes(message.as_bytes(policy=SMTP_POLICY))
            os.replace(tmp, target)
        except OSError as exc:
            raise PermanentFailure(
                f"cannot write to the outbox {self.folder}: {exc.strerror or exc}"
            ) from None
        return str(target)


class SmtpTransport:
    name = "smtp"
    idempotent = False

    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        if s.ssl:
            conn: smtplib.SMTP = smtplib.SMTP_SSL(
                s.host, s.port, timeout=s.timeout, context=ssl_lib.create_default_context()
            )
        else:
            conn = smtplib.SMTP(s.host, s.port, timeout=s.timeout)
        conn.ehlo()
        if s.starttls and not s.ssl:
            conn.starttls(context=ssl_lib.create_default_context())
            conn.ehlo()
        if s.username:
            conn.login(s.username, s.password or "")
        return conn

    def send(self, message: EmailMessage, *, sender: str, recipients: Sequence[str], key: str) -> str:
        where = f"{self.settings.host}:{self.settings.port}"
        payload = message.as_bytes(policy=SMTP_POLICY)
        conn: smtplib.SMTP | None = None
        try:
            # Everything before DATA: a failure here means the server has not taken the message.
            try:
                conn = self._connect()
                code, reply = conn.mail(sender)
                _check(code, reply, f"MAIL FROM at {where}")
                for recipient in recipients:
                    code, reply = conn.rcpt(recipient)
                    if code not in (250, 251):
                        _check(code, reply, f"RCPT TO {recipient} at {where}")
            except smtplib.SMTPAuthenticationError as exc:
                raise PermanentFailure(
                    f"SMTP login to {where} refused ({exc.smtp_code}): check the user and password"
                ) from None
            except (smtplib.SMTPException, OSError) as exc:
                raise TemporaryFailure(f"SMTP {where} before DATA: {exc}") from None
            # DATA: a reply code is definite; a lost connection or timeout leaves it unknown.
            try:
                code, reply = conn.data(payload)
            except smtplib.SMTPDataError as exc:
                _check(exc.smtp_code, exc.smtp_error, f"DATA at {where}")
                raise
            except (smtplib.SMTPException, OSError) as exc:
                raise UncertainFailure(
                    f"SMTP {where}: connection lost during DATA ({exc}); the message may have been delivered"
                ) from None
            _check(code, reply, f"DATA at {where}")
            return f"smtp://{where} {message['Message-ID']}"
        finally:
            if conn is not None:
                try:
                    conn.quit()
                except (smtplib.SMTPException, OSError):
                    conn.close()


def _check(code: int, reply: bytes | str, step: str) -> None:
    if 200 <= code < 300:
        return
    text = reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)
    if 400 <= code < 500 or code == -1:
        raise TemporaryFailure(f"{step}: {code} {text}")
    raise PermanentFailure(f"{step}: {code} {text}")


_SES_TEMPORARY = {
    "Throttling",
    "ThrottlingException",
    "TooManyRequestsException",
    "ServiceUnavailable",
    "RequestTimeout",
}


# One attempt, no botocore retry: botocore would also retry a read timeout, which can send twice; the
# digest's own loop knows which failures are safe to retry. (botocore's `max_attempts` counts retries,
# so `max_attempts: 1` would still allow a second attempt; `total_max_attempts` counts them all.)
SES_CLIENT_RETRIES = {"total_max_attempts": 1, "mode": "standard"}


class SesTransport:
    """SES ``send_raw_email`` (the SES client, as Airflow's SesHook gives) or SESv2 ``send_email``
    with ``Content.Raw``, both with the digest's message tag."""

    name = "ses"
    idempotent = False

    def __init__(self, client: Any | None = None) -> None:
        if client is None:
            import boto3
            from botocore.config import Config
            from botocore.exceptions import NoRegionError

            try:
                client = boto3.client("ses", config=Config(retries=SES_CLIENT_RETRIES))
            except NoRegionError:
                raise ConfigError(
                    "the ses digest transport needs an AWS region: set AWS_DEFAULT_REGION"
                ) from None
        self.client = client

    def send(self, message: EmailMessage, *, sender: str, recipients: Sequence[str], key: str) -> str:
        from botocore.exceptions import (
            ClientError,
            ConnectTimeoutError,
            EndpointConnectionError,
            NoCredentialsError,
            ParamValidationError,
            PartialCredentialsError,
        )

        payload = message.as_bytes(policy=SMTP_POLICY)
        tags = [{"Name": DIGEST_TAG_NAME, "Value": DIGEST_TAG_VALUE}]
        service = self.client.meta.service_model.service_name
        try:
            if service == "sesv2":
                response = self.client.send_email(
                    FromEmailAddress=sender,
                    Destination={"ToAddresses": list(recipients)},
                    Content={"Raw": {"Data": payload}},
                    EmailTags=tags,
                )
            else:
                response = self.client.send_raw_email(
                    Source=sender, Destinations=list(recipients), RawMessage={"Data": payload}, Tags=tags
                )
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = error.get("Code", "")
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            text = f"SES {code}: {error.get('Message', '')}"
            if code in _SES_TEMPORARY:
                raise TemporaryFailure(text) from None
            if status >= 500:
                raise UncertainFailure(f"{text} (server error; the message may have been sent)") from None
            raise PermanentFailure(text) from None
        except (NoCredentialsError, PartialCredentialsError, ParamValidationError) as exc:
            raise PermanentFailure(f"SES request not sent: {exc}") from None
        except (EndpointConnectionError, ConnectTimeoutError) as exc:
            raise TemporaryFailure(f"SES unreachable: {exc}") from None
        except Exception as exc:  # read timeouts, dropped connections: the request may have arrived
            raise UncertainFailure(f"SES call failed after sending the request: {exc}") from None
        return f"ses:{response['MessageId']}"


def build_transport(
    name: str, *, outbox: Path, smtp: SmtpSettings | None, ses_client: Any | None
) -> Transport:
    if name == "outbox":
        return OutboxTransport(outbox)
    if name == "smtp":
        return SmtpTransport(smtp or load_smtp_settings())
    if name == "ses":
        return SesTransport(ses_client)
    raise ConfigError(f"unknown digest transport {name!r}: use outbox, smtp or ses")
