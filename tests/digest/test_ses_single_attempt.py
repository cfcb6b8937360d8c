"""An SES call that fails after the request left may have sent the email: the client must never try
it again by itself (botocore retries a 500 or a read timeout unless told not to)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from bouncehouse.digest.transports import SesTransport, UncertainFailure

INTERNAL_FAILURE = (
    b'<ErrorResponse xmlns="http://ses.amazonaws.com/doc/2010-12-01/"><Error><Type>Receiver</Type>'
    b"<Code>InternalFailure</Code><Message>try later</Message></Error><RequestId>r-1</RequestId></ErrorResponse>"
)


class FailingSes(BaseHTTPRequestHandler):
    """Answers every SendRawEmail with HTTP 500 and counts the requests."""

    requests = 0

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        type(self).requests += 1
        self.send_response(500)
        self.send_header("Content-Type", "text/xml")
        self.send_header("Content-Length", str(len(INTERNAL_FAILURE)))
        self.end_headers()
        self.wfile.write(INTERNAL_FAILURE)

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def failing_ses(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[FailingSes]]:
    FailingSes.requests = 0
    server = ThreadingHTTPServer(("127.0.0.1", 0), FailingSes)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{server.server_address[1]}")
    try:
        yield FailingSes
    finally:
        server.shutdown()
        server.server_close()


def test_a_server_error_is_uncertain_and_sent_once(failing_ses: type[FailingSes]) -> None:
    message = EmailMessage()
    message["Subject"] = "digest"
    message.set_content("body")
    with pytest.raises(UncertainFailure, match="may have been sent"):
        SesTransport().send(message, sender="bouncehouse@example.com", recipients=["a@example.com"], key="k")
    assert failing_ses.requests == 1
