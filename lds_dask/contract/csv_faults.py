"""Where a CSV file that the reader rejected goes wrong: its first fault by line and column.

A parser's message quotes the text it failed on (a whole record, person ids and all), so
it is never shown. Instead, on the error path only, the file is read again here and its
first fault is named by line number, column (from the header) and rule: bytes that are
not UTF-8, a quote that is never closed, text after a closing quote, a quote inside an
unquoted field, more fields than the header. Values are never part of a fault.

The structure is checked with Python's ``csv`` module (C speed); only the one record that
fails is scanned character by character, to find the field where its quoting goes wrong.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

QUOTE, SEPARATOR = '"', ","
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


def locate_csv_fault(data: bytes, n_columns: int) -> CsvFault | None:
    """The first fault in ``data`` (a whole CSV file, header first), or None if none of
    the known kinds is found."""
    text, bad_byte = decodable_prefix(data)
    fault = structure_fault(text, n_columns)
    if bad_byte is not None and (fault is None or fault.rule == UNCLOSED):
        # a quote that seems open at the bad byte may only be cut off by it
        return encoding_fault(text)
    return fault or quoting_fault(text)


def decodable_prefix(data: bytes) -> tuple[str, int | None]:
    """The text before the first byte that is not UTF-8 (a BOM dropped), and that byte's
    offset (None when every byte decodes)."""
    start = 3 if data.startswith(b"\xef\xbb\xbf") else 0
    try:
        return data[start:].decode("utf-8"), None
    except UnicodeDecodeError as exc:
        return data[start : start + exc.start].decode("utf-8"), start + exc.start


def structure_fault(text: str, n_columns: int) -> CsvFault | None:
    """A record with more fields than the header, or quoting the ``csv`` module refuses."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    start = 1  # the line the current record starts on
    try:
        for row in reader:
            if len(row) > n_columns:
                return CsvFault(
                    start, n_columns, f"{len(row)} fields where the header has {n_columns}"
                )
            start = reader.line_num + 1
    except csv.Error:
        field, rule = record_fault(record_text(text, start))
        return CsvFault(start, field, rule or UNCLOSED)
    return None


def encoding_fault(prefix: str) -> CsvFault:
    """The line and field of the first byte that is not UTF-8 (it ends ``prefix``, whose
    quoting is sound up to there, else :func:`structure_fault` would have named it)."""
    reader = csv.reader(io.StringIO(prefix, newline=""), strict=True)
    start = last_start = 1  # the lines the next and the last record read start on
    cut = False  # the prefix ends inside a quoted field of the record at ``start``
    try:
        for _ in reader:
            last_start, start = start, reader.line_num + 1
    except csv.Error:
        cut = True
    # the last record read holds the byte unless the prefix ends with a whole line
    whole = cut or prefix.endswith(("\n", "\r")) or not prefix
    record = record_text(prefix, start if whole else last_start)
    field = record.count(SEPARATOR) if QUOTE not in record else record_fault(record, True)[0]
    return CsvFault(prefix.count("\n") + 1, field, NOT_UTF8)


def quoting_fault(text: str) -> CsvFault | None:
    """The first quote inside an unquoted field (the ``csv`` module takes it as text, the
    reader does not), scanning every record: the slow path, taken last."""
    reader = csv.reader(io.StringIO(text, newline=""))
    start = 1
    for row in reader:
        if any(QUOTE in value for value in row):
            field, rule = record_fault(record_text(text, start))
            if rule is not None:
                return CsvFault(start, field, rule)
        start = reader.line_num + 1
    return None


def record_text(text: str, line: int) -> str:
    """The text from the start of ``line`` (1-based) to the end of ``text``."""
    offset = 0
    for _ in range(line - 1):
        offset = text.find("\n", offset) + 1
        if offset == 0:
            return ""
    return text[offset:]


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
