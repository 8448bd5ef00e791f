"""Bytes → text for the text formats (.txt, .md, .rst, .html).

UTF-8 is expected; a UTF-8 or UTF-16 byte-order mark is honoured. Anything else fails with a
message that says which byte is wrong and what to do, and NUL bytes mark a binary file.
Line endings are normalised to ``\\n``.
"""

from __future__ import annotations

import codecs

from assistant.core.errors import DocumentError

_BINARY = "looks like a binary file, not text"


def decode_text(data: bytes, source: str) -> str:
    """Decode a text file's bytes, raising :class:`DocumentError` for binary or non-UTF-8 data."""
    if data.startswith(codecs.BOM_UTF8):
        text = _decode_utf8(data, len(codecs.BOM_UTF8), source)
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        text = _decode_utf16(data, source)
    elif b"\x00" in data:
        raise DocumentError(source, _BINARY)
    else:
        text = _decode_utf8(data, 0, source)
    if "\x00" in text:
        raise DocumentError(source, _BINARY)
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _decode_utf8(data: bytes, skip: int, source: str) -> str:
    try:
        return data[skip:].decode("utf-8")
    except UnicodeDecodeError as exc:
        offset = skip + exc.start
        raise DocumentError(
            source,
            f"is not valid UTF-8 (invalid byte 0x{data[offset]:02x} at offset {offset}); "
            "convert it to UTF-8",
        ) from exc


def _decode_utf16(data: bytes, source: str) -> str:
    try:
        return data.decode("utf-16")
    except UnicodeDecodeError as exc:
        raise DocumentError(
            source,
            f"is not valid UTF-16 despite its byte-order mark ({exc.reason} at offset "
            f"{exc.start}); convert it to UTF-8",
        ) from exc
