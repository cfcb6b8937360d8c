"""A loopback stand-in for the four SESv2 suppression operations moto does not implement.

It speaks their REST-JSON wire format (the paths, methods, query strings, bodies and error shapes of
botocore's own ``sesv2`` service model) and checks every request against that model: the operation
found from method and path, required members present, no member the model does not name, enums,
integers within their bounds, timestamps that parse. A request that fails the check gets a 400 and is
recorded in ``violations``, which the fixture asserts empty, so a client call the real SES would reject
cannot pass here. It also keeps every request (``requests``) and can throttle on demand.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from botocore.loaders import Loader

MODEL = Loader().load_service_model("sesv2", "service-2")
OPERATIONS = (
    "ListSuppressedDestinations",
    "GetSuppressedDestination",
    "PutSuppressedDestination",
    "DeleteSuppressedDestination",
)


def _route_pattern(request_uri: str) -> re.Pattern[str]:
    return re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", request_uri) + "$")


ROUTES = [
    (
        name,
        MODEL["operations"][name]["http"]["method"],
        _route_pattern(MODEL["operations"][name]["http"]["requestUri"]),
    )
    for name in OPERATIONS
]


class RequestRejected(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _parse_timestamp(text: str) -> datetime:
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _check_value(name: str, shape_name: str, value: Any) -> Any:
    """The member's value checked against its shape (as sent: text for query/uri, JSON for the body)."""
    shape = MODEL["shapes"][shape_name]
    kind = shape["type"]
    if kind == "list":
        values = value if isinstance(value, list) else [value]
        return [_check_value(name, shape["member"]["shape"], item) for item in values]
    if kind == "integer":
        number = int(value)
        if number < shape.get("min", number) or number > shape.get("max", number):
            raise ValueError(f"{name}={number} outside [{shape.get('min')}, {shape.get('max')}]")
        return number
    if kind == "timestamp":
        return _parse_timestamp(value)
    if kind == "string":
        if not isinstance(value, str):
            raise ValueError(f"{name} must be a string, got {value!r}")
        if "enum" in shape and value not in shape["enum"]:
            raise ValueError(f"{name}={value!r} is not one of {shape['enum']}")
        return value
    raise ValueError(f"{name}: shape type {kind} not expected in these operations")


def validate(
    operation: str, labels: dict[str, str], query: dict[str, list[str]], body: dict[str, Any]
) -> dict:
    """The operation's input as the model reads it; ValueError on anything the model does not allow."""
    shape = MODEL["shapes"][MODEL["operations"][operation]["input"]["shape"]]
    members, required = shape.get("members", {}), set(shape.get("required", []))
    params: dict[str, Any] = {}
    known_query, known_body = set(), set()
    for name, member in members.items():
        where, wire_name = member.get("location"), member.get("locationName", name)
        if where == "uri":
            raw = unquote(labels[wire_name]) if wire_name in labels else None
        elif where == "querystring":
            known_query.add(wire_name)
            values = query.get(wire_name)
            is_list = MODEL["shapes"][member["shape"]]["type"] == "list"
            raw = values if (is_list or values is None) else values[-1]
        elif where is None:
            known_body.add(wire_name)
            raw = body.get(wire_name)
        else:
            continue
        if raw is None:
            if name in required:
                raise ValueError(f"{operation}: required member {name} missing")
            continue
        params[name] = _check_value(name, member["shape"], raw)
    unknown = sorted(set(query) - known_query) + sorted(set(body) - known_body)
    if unknown:
        raise ValueError(f"{operation}: members the model does not define: {unknown}")
    return params


@dataclass
class Entry:
    reason: str
    updated: datetime
    message_id: str | None = None
    feedback_id: str | None = None


@dataclass
class SesV2StandIn:
    """The account's suppression list and what was asked of it."""

    entries: dict[str, Entry] = field(default_factory=dict)
    requests: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    throttle_next: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    endpoint_url: str = ""

    def calls(self, operation: str) -> list[dict[str, Any]]:
        return [params for op, params in self.requests if op == operation]

    def add(self, email: str, reason: str, *, message_id: str | None = None, feedback_id: str | None = None,
            updated: datetime | None = None) -> None:  # fmt: skip
        """An address SES itself suppressed (from a bounce or complaint it saw)."""
        self.entries[email] = Entry(reason, updated or datetime.now(UTC), message_id, feedback_id)

    def handle(self, method: str, url: str, body_bytes: bytes) -> tuple[int, dict[str, Any], str | None]:
        parts = urlsplit(url)
        found = [
            (op, m) for op, verb, pattern in ROUTES if verb == method and (m := pattern.match(parts.path))
        ]
        if not found:
            return 404, {"message": f"no such operation: {method} {parts.path}"}, "NotFoundException"
        operation, match = found[0]
        try:
            body = json.loads(body_bytes) if body_bytes else {}
            params = validate(
                operation, match.groupdict(), parse_qs(parts.query, keep_blank_values=True), body
            )
        except (ValueError, KeyError) as exc:
            self.violations.append(f"{method} {url}: {exc}")
            return 400, {"message": str(exc)}, "BadRequestException"
        with self.lock:
            self.requests.append((operation, params))
            if self.throttle_next > 0:
                self.throttle_next -= 1
                return 429, {"message": "Too many requests"}, "TooManyRequestsException"
            return getattr(self, "_" + operation)(params)

    def _ListSuppressedDestinations(self, params: dict[str, Any]):  # noqa: N802 (the operation's name)
        start, end = params.get("StartDate"), params.get("EndDate")
        reasons = params.get("Reasons")
        listed = [
            (email, entry) for email, entry in sorted(self.entries.items())
            if (start is None or entry.updated >= start) and (end is None or entry.updated <= end)
            and (not reasons or entry.reason in reasons)
        ]  # fmt: skip
        offset = int(params.get("NextToken", "0"))
        size = params.get("PageSize", 1000)
        page = listed[offset : offset + size]
        result: dict[str, Any] = {
            "SuppressedDestinationSummaries": [
                {"EmailAddress": email, "Reason": entry.reason, "LastUpdateTime": entry.updated.timestamp()}
                for email, entry in page
            ]
        }
        if offset + size < len(listed):
            result["NextToken"] = str(offset + size)
        return 200, result, None

    def _GetSuppressedDestination(self, params: dict[str, Any]):  # noqa: N802
        entry = self.entries.get(params["EmailAddress"])
        if entry is None:
            return (
                404,
                {"message": f"{params['EmailAddress']} is not on the suppression list"},
                "NotFoundException",
            )
        attributes = {"MessageId": entry.message_id or "", "FeedbackId": entry.feedback_id or ""}
        return 200, {"SuppressedDestination": {
            "EmailAddress": params["EmailAddress"], "Reason": entry.reason,
            "LastUpdateTime": entry.updated.timestamp(), "Attributes": attributes,
        }}, None  # fmt: skip

    def _PutSuppressedDestination(self, params: dict[str, Any]):  # noqa: N802
        self.entries[params["EmailAddress"]] = Entry(params["Reason"], datetime.now(UTC))
        return 200, {}, None

    def _DeleteSuppressedDestination(self, params: dict[str, Any]):  # noqa: N802
        if self.entries.pop(params["EmailAddress"], None) is None:
            return (
                404,
                {"message": f"{params['EmailAddress']} is not on the suppression list"},
                "NotFoundException",
            )
        return 200, {}, None


def serve(state: SesV2StandIn) -> ThreadingHTTPServer:
    """Start the stand-in on 127.0.0.1 (a free port) in a daemon thread; ``state.endpoint_url`` says where."""

    class Handler(BaseHTTPRequestHandler):
        def _respond(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            status, payload, error_type = state.handle(self.command, self.path, self.rfile.read(length))
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("x-amzn-RequestId", "standin-request")
            if error_type:
                self.send_header("x-amzn-ErrorType", error_type)
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_PUT = do_DELETE = do_POST = _respond  # noqa: N815 (http.server's hook names)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base class's name)
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.endpoint_url = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server
