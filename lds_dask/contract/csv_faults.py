"""Where a CSV file that the reader rejected goes wrong: its first fault by line and column.

A parser's message quotes the text it failed on (a whole record, person ids and all), so
it is never shown. Instead, on the error path only, the file is read again here and its
first fault is named by line number, column (from the header) and rule: bytes that are
not UTF-8, a quote that is never closed, text after a closing quote, a quote inside an
unquoted field, more fields than the header. Values are never part of a fault.

The file is streamed, so memory stays bounded however large it is: the structure is
checked with Python's ``csv`` module (C speed), and only the record that fails is scanned
character by character (its first ``RECORD_CHARS``), to find the field where its quoting
goes wrong.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

QUOTE, SEPARATOR = '"', ","
CHUNK_BYTES = 1 << 20
RECORD_CHARS = 1 << 20  # the longest stretch of one record scanned character by character
NOT_UTF8 = "bytes that are not valid UTF-8 (save the file as UTF-8)"
UNCLOSED = "a quoted field is never closed (an unbalanced quote)"
AFTER_QUOTE = "text after a closing quote (a quote inside a quoted field must be doubled)"
QUOTE_IN_FIELD = "a quote inside an unquoted field (quote the field and double the quote)"


@dataclass(frozen=True)
class CsvFault:
    """The first fault of a CSV file: 1-based line, 0-based field (None: unknown), rule."""

    line: int
    field: int | None
    rule: str

    def describe(self, columns: list[str]) -> str:
        """``line 4, column person_id: <rule>``; the column named from the header."""
        if self.field is None or not columns:
            return f"line {self.line}: {self.rule}"
        if self.field < len(columns):
            return f"line {self.line}, column {columns[self.field]}: {self.rule}"
        where = f"field {self.field + 1} (after the last column, {columns[-1]})"
        return f"line {self.line}, {where}: {self.rule}"


def locate_csv_fault(path: Path, n_columns: int) -> CsvFault | None:
    """The first fault of the CSV file at ``path`` (header first, ``n_columns`` names in
    it), or None if none of the known kinds is found."""
    bad_byte = first_bad_byte(path)
    fault = structure_fault(path, bad_byte, n_columns)
    if bad_byte is not None and (fault is None or fault.rule == UNCLOSED):
        # a quote that seems open at the bad byte may only be cut off by it
        return encoding_fault(path, bad_byte)
    return fault or quoting_fault(path, bad_byte)


def first_bad_byte(path: Path) -> int | None:
    """The offset of the first byte that is not UTF-8 (None when every byte decodes)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = 0
    with open(path, "rb") as f:
        while True:
            chunk = f.read(CHUNK_BYTES)
            pending = len(decoder.getstate()[0])  # bytes of a character cut by the chunk
            try:
                decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as exc:
                return offset - pending + exc.start
            if not chunk:
                return None
            offset += len(chunk)


class _Upto(io.RawIOBase):
    """The first ``limit`` bytes of a binary file."""

    def __init__(self, raw, limit: int):
        self.raw, self.left = raw, limit

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self.raw.read(min(len(buffer), self.left))
        buffer[: len(data)] = data
        self.left -= len(data)
        return len(data)


@contextmanager
def text_before(path: Path, limit: int | None) -> Iterator[TextIO]:
    """The file as text (a BOM dropped), up to byte ``limit`` (None: to its end)."""
    with open(path, "rb") as raw:
        stream = raw if limit is None else io.BufferedReader(_Upto(raw, limit))
        yield io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")


def structure_fault(path: Path, limit: int | None, n_columns: int) -> CsvFault | None:
    """A record with more fields than the header, or quoting the ``csv`` module refuses."""
    with text_before(path, limit) as text:
        reader = csv.reader(text, strict=True)
        start = 1  # the line the current record starts on
        try:
            for row in reader:
                if len(row) > n_columns:
                    extra = f"{len(row)} fields where the header has {n_columns}"
                    return CsvFault(start, n_columns, extra)
                start = reader.line_num + 1
        except csv.Error:
            field, rule = record_fault(record_text(path, limit, start))
            return CsvFault(start, field, rule or UNCLOSED)
    return None


def encoding_fault(path: Path, bad_byte: int) -> CsvFault:
    """The line and field of the first byte that is not UTF-8; the quoting before it is
    sound, else :func:`structure_fault` would have named that first."""
    with text_before(path, bad_byte) as text:
        reader = csv.reader(text, strict=True)
        start = last_start = 1  # the lines the next and the last record read start on
        cut = False  # the text ends inside a quoted field of the record at ``start``
        try:
            for _ in reader:
                last_start, start = start, reader.line_num + 1
        except csv.Error:
            cut = True
    newlines, last = count_newlines(path, bad_byte)
    # the last record read holds the byte unless the text before it ends with a whole line
    whole = cut or last in (b"", b"\n", b"\r")
    record = record_text(path, bad_byte, start if whole else last_start)
    if len(record) == RECORD_CHARS:
        return CsvFault(newlines + 1, None, NOT_UTF8)  # too long a record to follow
    field = record.count(SEPARATOR) if QUOTE not in record else record_fault(record, True)[0]
    return CsvFault(newlines + 1, field, NOT_UTF8)


def count_newlines(path: Path, limit: int) -> tuple[int, bytes]:
    """How many line feeds the first ``limit`` bytes hold, and the last of those bytes."""
    count, last, left = 0, b"", limit
    with open(path, "rb") as f:
        while left > 0 and (chunk := f.read(min(CHUNK_BYTES, left))):
            count, last, left = count + chunk.count(b"\n"), chunk[-1:], left - len(chunk)
    return count, last


def quoting_fault(path: Path, limit: int | None) -> CsvFault | None:
    """The first quote inside an unquoted field (the ``csv`` module takes it as text, the
    reader does not), looking into each record that holds a quote: taken last."""
    with text_before(path, limit) as text:
        reader = csv.reader(text)
        start = 1
        for row in reader:
            if any(QUOTE in value for value in row):
                field, rule = record_fault(record_text(path, limit, start))
                if rule is not None:
                    return CsvFault(start, field, rule)
            start = reader.line_num + 1
    return None


def record_text(path: Path, limit: int | None, line: int) -> str:
    """At most RECORD_CHARS of the text from the start of ``line`` (1-based)."""
    with text_before(path, limit) as text:
        for _ in range(line - 1):
            if not text.readline():
                return ""
        return text.read(RECORD_CHARS)


def record_fault(record: str, to_end: bool = False) -> tuple[int | None, str | None]:
    """Scan one record (``record`` starts with it): the field where its quoting goes wrong
    and the rule, or (field, None) when it ends cleanly. With ``to_end`` the field reached
    at the end of ``record`` is returned instead."""
    field, in_quote, fresh, opened = 0, False, True, 0
    i = 0
    while i < len(record):
        c = record[i]
        if in_quote:
            if c == QUOTE and record[i + 1 : i + 2] == QUOTE:
                i += 1  # a doubled quote is a literal quote
            elif c == QUOTE:
                in_quote = False
                if record[i + 1 : i + 2] not in ("", SEPARATOR, "\r", "\n"):
                    return field, AFTER_QUOTE
        elif c == QUOTE:
            if not fresh:
                return field, QUOTE_IN_FIELD
            in_quote, opened = True, field
        elif c == SEPARATOR:
            field += 1
        elif c == "\n" and not to_end:
            return field, None
        elif c == "\n":
            field = 0  # the next record (when the record's start was misjudged)
        fresh = c in (SEPARATOR, "\n")
        i += 1
    if in_quote and not to_end:
        return opened, UNCLOSED
    return field, None
