"""The per-record path for the few objects that hold a broken record.

DuckDB reads whole objects on the normal path; when it cannot (a record that is not JSON or not
UTF-8) or when an object holds a record to set aside, that object alone is split here so every good
record still loads and each bad one is named by its 1-based position and byte offset.

Splitting: records follow each other separated by whitespace (newline framing) or by nothing at all
(``}{``). A good record ends where the JSON decoder says it ends, so ``}{`` inside a string is never a
boundary. A broken record ends where a raw newline cuts a string, where a ``{`` starts a line while
braces are still open (the previous record was cut off), or where its braces balance again and a new
line follows. Back to back, braces are not enough: a record cut off mid-way never balances, or, cut
inside a string, is read inside out and balances somewhere in the records after it. So a broken
record ends at the next record start: the first later ``{`` at which a JSON object decodes that looks
like a record (it has ``Type``, ``eventType``, ``notificationType`` or ``mail``), which a nested
object of the broken record (``"mail":{...}``) never is. Where its braces do balance, right before a
``{`` or the end, it ends there at the latest (a second bad record after it stays a record of its
own). Only broken records pay for this search. Two cut-off records in a row are one rejected record:
nothing in the first says where it stops.
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Container, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

GZIP_MAGIC = b"\x1f\x8b"
CHUNK_BYTES = 1 << 20  # compressed bytes decompressed at a time
EXCERPT_CHARS = 200

_DECODER = json.JSONDecoder()
_WHITESPACE = re.compile(r"[ \t\n\r]*")
_STRAY_END = re.compile(r"[\n{]")
_OUTSIDE_STRING = re.compile(r'[{}"]')
_INSIDE_STRING = re.compile(r'["\\\n]')
# Where an object with at least one key may start: the only places a record can.
_OBJECT_WITH_KEY = re.compile(r'\{[ \t\n\r]*"')
RECORD_KEYS = ("Type", "eventType", "notificationType", "mail")
# Where cut_into_lines starts a new line: inside a JSON string a quote is escaped, so ``}{"`` is
# not a record's start there only where a string ends in ``}{``.
RECORD_CUT = b'}{"'


@dataclass(frozen=True, slots=True)
class RawRecord:
    position: int  # 1-based record number in the object
    byte_offset: int  # where the record starts in the (decompressed) object
    text: str | None  # the record, when it is UTF-8 JSON; None when it was set aside here
    error: str | None  # why it was set aside: "<kind>: <detail>"
    excerpt: str | None


def is_gzip(head: bytes) -> bool:
    """Gzip is recognised by its magic bytes, never by the object's name."""
    return head[:2] == GZIP_MAGIC


class ContentTooLarge(Exception):
    """The object's content is over the limit: set aside whole (the message is the reason)."""


def read_content(path: Path, limit: int) -> tuple[bytes, str | None]:
    """The object's content (every gzip member), and an error when the gzip stream is damaged.

    Decompressed in chunks, never more than ``limit`` bytes: a decompression bomb raises
    ContentTooLarge after ``limit`` bytes, not after it has filled the memory. A damaged stream
    still yields what could be decompressed, so the records before the damage load."""
    with open(path, "rb") as handle:
        if not is_gzip(handle.read(2)):
            handle.seek(0)
            data = handle.read(limit + 1)
            if len(data) > limit:
                raise ContentTooLarge(
                    f"object_too_large: over {limit} bytes (BOUNCEHOUSE_INGEST_MAX_OBJECT_BYTES), too large "
                    "to read record by record"
                )
            return data, None
        handle.seek(0)
        return _gunzip(handle, limit)


def _gunzip(handle: BinaryIO, limit: int | None) -> tuple[bytes, str | None]:
    # A bytearray, returned as it is: a copy would double the peak.
    out = bytearray()
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    pending = b""  # the next member's first bytes, already read
    while True:
        data = inflater.unconsumed_tail or pending or handle.read(CHUNK_BYTES)
        pending = b""
        if not data:
            out += inflater.flush()
            if not inflater.eof:
                return bytes(
                    out
                ), "gzip_corrupt: the gzip stream ends before its end marker (truncated object)"
            return out, None
        budget = 0 if limit is None else limit + 1 - len(out)  # 0: no limit
        try:
            out += inflater.decompress(data, budget)
        except zlib.error as exc:
            return out, f"gzip_corrupt: {exc}"
        if limit is not None and len(out) > limit:
            raise ContentTooLarge(
                f"decompressed_too_large: its content is over {limit} bytes "
                "(BOUNCEHOUSE_INGEST_MAX_OBJECT_BYTES; a decompression bomb?), so it is not read"
            )
        if inflater.eof:
            rest = inflater.unused_data
            if len(rest) < 2:
                rest += handle.read(CHUNK_BYTES)
            if not rest:
                return out, None
            if not is_gzip(rest):  # only zero padding may follow the last member
                if rest.strip(b"\0") or _more_than_zeros(handle):
                    return out, "gzip_corrupt: unexpected bytes after the last gzip member"
                return out, None
            inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
            pending = rest


def _more_than_zeros(handle: BinaryIO) -> bool:
    while chunk := handle.read(CHUNK_BYTES):
        if chunk.strip(b"\0"):
            return True
    return False


def split_records(content: bytes) -> Iterator[RawRecord]:
    """Every record of a decompressed object, good or bad, in order."""
    # surrogateescape keeps undecodable bytes as lone surrogates: the text still splits, and the
    # record that holds them is found (and set aside) by its strict re-encoding below.
    text = content.decode("utf-8", "surrogateescape")
    offsets = _ByteOffsets(text, ascii_only=content.isascii())
    length = len(text)
    position = 0
    start = _WHITESPACE.match(text, 0).end()
    while start < length:
        position += 1
        record, end = record_at(text, start, position, offsets.at(start))
        yield record
        start = _WHITESPACE.match(text, end).end()


def record_at(text: str, start: int, position: int, byte_offset: int) -> tuple[RawRecord, int]:
    """The record that starts at ``text[start]`` (a character index), and where it ends."""
    try:
        _, end = _DECODER.raw_decode(text, start)
        parse_error = None
    except json.JSONDecodeError as exc:
        end = max(_broken_record_end(text, start), start + 1)
        parse_error = (
            f"not_json: {exc.msg.removesuffix(' at')} (character {exc.pos - start + 1} of the record)"
        )
    except RecursionError:
        end = max(_broken_record_end(text, start), start + 1)
        parse_error = "not_json: nested too deeply"
    record = text[start:end]
    try:
        record.encode("utf-8")
    except UnicodeEncodeError as exc:
        raw = record.encode("utf-8", "surrogateescape")
        bad_at = len(record[: exc.start].encode("utf-8", "surrogateescape"))
        error = f"invalid_utf8: byte 0x{raw[bad_at]:02x} at byte {bad_at + 1} of the record is not UTF-8"
        return RawRecord(position, byte_offset, None, error, _excerpt(raw)), end
    if parse_error is None:
        return RawRecord(position, byte_offset, record, None, _excerpt(record.encode())), end
    return RawRecord(position, byte_offset, None, parse_error, _excerpt(record.encode())), end


@dataclass(frozen=True, slots=True)
class Resplit:
    """An object DuckDB read whole, matched record for record with what ``split_records`` finds."""

    rows: int  # DuckDB's records (rows), numbered 1..rows
    named: dict[int, tuple[int, str]]  # row -> (byte offset, excerpt), for the rows asked for
    unread: list[int]  # the rows DuckDB could not read...
    records: list[RawRecord]  # ...and the records they hold, as split_records reads them
    moved: dict[int, int]  # row -> its position, for the rows DuckDB read whose position is not theirs


def resplit(
    content: bytes, texts: Iterable[str | None], *, lines: bool, cut: bool, named: Container[int]
) -> Resplit | None:
    """Where the records DuckDB read are, and what those it could not read hold. ``texts``: each
    row's text as DuckDB's reader gave it, in order, None where it could not read it. ``lines``:
    DuckDB read the object line by line (else as JSON values back to back, all or nothing);
    ``cut``: it read ``cut_into_lines`` of it.

    Only what DuckDB could not read is parsed here: each record it read is found by its text, and
    a line it could not read holds the records ``record_at`` finds there, one after the other, so
    the positions and records are what ``split_records`` gives. When that is not certain (a record
    not where DuckDB's reading puts it, one that spans lines, content left over) the result is
    None, and the caller splits the whole object."""
    size = len(content)
    decoded: str | None = None
    ascii_only = content.isascii()
    found: dict[int, tuple[int, str]] = {}
    unread: list[int] = []
    records: list[RawRecord] = []
    moved: dict[int, int] = {}
    end = row = position = 0
    pos = _skip_whitespace(content, 0)
    for row, text in enumerate(texts, start=1):
        if pos >= size or (lines and row > 1 and not _starts_line(content, end, pos, cut=cut)):
            return None
        position += 1
        if text is not None:
            known = text.encode()
            if not content.startswith(known, pos):
                return None
            end = pos + len(known)
            if row in named:
                found[row] = (pos, _excerpt(known))
            if position != row:
                moved[row] = position
            pos = _skip_whitespace(content, end)
            continue
        if not lines:
            return None
        if decoded is None:
            decoded = content.decode("utf-8", "surrogateescape")
        unread.append(row)
        while True:  # the records on this line
            start = pos if ascii_only else len(content[:pos].decode("utf-8", "surrogateescape"))
            record, end_char = record_at(decoded, start, position, pos)
            end = pos + len(decoded[start:end_char].encode("utf-8", "surrogateescape"))
            if _spans_lines(content[pos:end], cut=cut):
                return None
            records.append(record)
            pos = _skip_whitespace(content, end)
            if pos >= size or _starts_line(content, end, pos, cut=cut):
                break
            position += 1
    return Resplit(row, found, unread, records, moved) if pos >= size else None


def cut_into_lines(content: bytes) -> bytes:
    """Records back to back, one per line for DuckDB's line reader, which reads on past a broken
    record (its line comes back null) where its reader of records back to back stops. A newline
    goes inside each RECORD_CUT; where a string ends in ``}{`` that cuts its record into two lines
    that are not JSON, and ``resplit`` then finds it spans them."""
    return content.replace(RECORD_CUT, b'}\n{"')


def _starts_line(content: bytes, end: int, start: int, *, cut: bool) -> bool:
    """Whether the record at ``start``, after one that ends at ``end``, starts a line of what DuckDB read."""
    if b"\n" in content[end:start]:
        return True
    if not cut:
        return False
    return start == end and content[end - 1 : end + 2] == RECORD_CUT


def _spans_lines(piece: bytes, *, cut: bool) -> bool:
    return b"\n" in piece or (cut and RECORD_CUT in piece)


def _skip_whitespace(content: bytes, at: int) -> int:
    size = len(content)
    while at < size and content[at] in b" \t\n\r":
        at += 1
    return at


def _broken_record_end(text: str, start: int) -> int:
    """Where a record that does not parse ends (see the module docstring)."""
    length = len(text)
    if text[start] != "{":  # stray text: up to the end of its line or the next record
        match = _STRAY_END.search(text, start + 1)
        return match.start() if match else length
    end, closed = _brace_scan(text, start)
    if closed == "newline":
        return end
    limit = length
    if closed == "balanced":
        after = _WHITESPACE.match(text, end).end()
        if after < length and "\n" in text[end:after]:
            return end  # newline framing: the next line is the next record, whatever it holds
        if after == length or text[after] == "{":
            limit = end  # back to back, and the braces close where a record may start: it ends here...
    # ...unless a record starts before (the braces were read inside out), or the braces never
    # closed where a record may start: then it ends where the next record starts.
    resume = _next_record_start(text, start + 1, limit)
    while resume > start + 1 and text[resume - 1] in " \t\r\n":
        resume -= 1
    return resume


def _next_record_start(text: str, after: int, limit: int) -> int:
    """The first ``{`` in ``[after, limit)`` where a JSON object that looks like a record decodes
    (it may end past ``limit``), else ``limit``."""
    for match in _OBJECT_WITH_KEY.finditer(text, after):
        at = match.start()
        if at >= limit:
            break
        try:
            value, _ = _DECODER.raw_decode(text, at)
        except (json.JSONDecodeError, RecursionError):
            continue
        if isinstance(value, dict) and any(key in value for key in RECORD_KEYS):
            return at
    return limit


def _brace_scan(text: str, start: int) -> tuple[int, str]:
    """Where the braces opened at ``start`` close: ``balanced`` (just after the ``}`` that brings
    them back to depth 0), ``newline`` (a raw newline cuts a string, or a ``{`` starts a line while
    braces are open), or ``open`` (the end of the text)."""
    length = len(text)
    depth = 0
    index = start
    while index < length:
        match = _OUTSIDE_STRING.search(text, index)
        if match is None:
            return length, "open"
        char, at = match.group(), match.start()
        if char == "{":
            if depth > 0 and text[at - 1] == "\n":
                return at - 1, "newline"  # a record starts a line while braces are open: this one was cut off
            depth += 1
            index = at + 1
        elif char == "}":
            depth -= 1
            index = at + 1
            if depth <= 0:
                return index, "balanced"
        else:  # a string: skip to its closing quote
            index = at + 1
            while True:
                inner = _INSIDE_STRING.search(text, index)
                if inner is None:
                    return length, "open"
                if inner.group() == "\\":
                    if text.startswith("\n", inner.start() + 1):  # not even escaped: cut off here
                        return inner.start() + 1, "newline"
                    index = inner.start() + 2
                elif inner.group() == "\n":  # a raw newline cannot be inside a JSON string: cut off here
                    return inner.start(), "newline"
                else:
                    index = inner.start() + 1
                    break
    return length, "open"


class _ByteOffsets:
    """Character index -> byte offset, for increasing indexes (cheap: each character is counted once)."""

    def __init__(self, text: str, *, ascii_only: bool) -> None:
        self.text = text
        self.ascii_only = ascii_only
        self.char = 0
        self.byte = 0

    def at(self, index: int) -> int:
        if self.ascii_only:
            return index
        self.byte += len(self.text[self.char : index].encode("utf-8", "surrogateescape"))
        self.char = index
        return self.byte


def _excerpt(raw: bytes) -> str:
    return raw[: EXCERPT_CHARS * 4].decode("utf-8", "replace")[:EXCERPT_CHARS]
