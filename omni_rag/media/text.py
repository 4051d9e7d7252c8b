"""Text files in the encodings people actually have: UTF-8, UTF-16/32 with a BOM, and Windows-1252.

Decoding is strict: a file is either decoded in full by one named encoding, or refused with the
reason. Nothing is replaced with U+FFFD behind the caller's back, and a fallback encoding is named
in the result so the caller can report it.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass

from omni_rag.errors import MediaError

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
#: Control characters other than tab, newlines and form feed mark a binary file, not text.
_CONTROL = {chr(c) for c in range(32)} - {"\t", "\n", "\r", "\f"}


@dataclass(frozen=True)
class DecodedText:
    """A decoded text file.

    Attributes:
        text: The content.
        encoding: The encoding that decoded all of it.
        guessed: ``True`` when that encoding is a fallback (no BOM, not valid UTF-8): report it.
    """

    text: str
    encoding: str
    guessed: bool = False


def decode_text(data: bytes, *, partial: bool = False) -> DecodedText:
    """Decode a text file's bytes, or raise naming why it is not text.

    Args:
        data: The file's bytes (or its first bytes with ``partial=True``).
        partial: ``data`` may end inside a multi-byte character (a probe of the file's head).

    Raises:
        MediaError: Binary content, or bytes no supported encoding decodes.
    """
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return DecodedText(_strict(data, encoding, partial), encoding)
    if b"\x00" in data:
        raise MediaError("binary content (NUL bytes) and no UTF-16/32 byte-order mark")
    try:
        return DecodedText(_strict(data, "utf-8", partial), "utf-8")
    except UnicodeDecodeError:
        pass
    try:
        text = data.decode("cp1252")
    except UnicodeDecodeError as error:
        raise MediaError(f"neither UTF-8 nor Windows-1252 text (byte {error.start})") from error
    _refuse_binary(text)
    return DecodedText(text, "cp1252", guessed=True)


def _strict(data: bytes, encoding: str, partial: bool) -> str:
    text = codecs.getincrementaldecoder(encoding)().decode(data, final=not partial)
    _refuse_binary(text)
    return text


def _refuse_binary(text: str) -> None:
    if any(c in _CONTROL for c in text[:65536]):
        raise MediaError("control characters: binary content, not text")
