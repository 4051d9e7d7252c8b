"""Errors raised by omni-rag.

Every input error names the item (its index in the caller's batch), the field
(``text``, ``image``, ``audio``, ``video``) and the reason, so one bad file in a
folder of thousands can be found without a debugger.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class OmniError(Exception):
    """Base class of every error omni-rag raises on purpose."""


class ModelMismatchError(OmniError):
    """The collection was indexed with another model; its vectors are not comparable."""


class MediaError(OmniError):
    """A media source could not be read; raised by :mod:`omni_rag.media`.

    It carries only the reason: the caller that knows the item's index and
    field wraps it into an :class:`OmniInputError`.
    """


class OmniInputError(OmniError, ValueError):
    """One input item is unusable.

    Attributes:
        index: Position of the item in the caller's batch (``None`` for a lone item).
        field: The offending field: ``text``, ``image``, ``audio``, ``video`` or ``item``.
        reason: Human-readable cause.
    """

    def __init__(self, reason: str, *, index: int | None = None, field: str = "item") -> None:
        self.index = index
        self.field = field
        self.reason = reason
        where = f"item {index}" if index is not None else "item"
        super().__init__(f"{where}, field '{field}': {reason}")

    def __reduce__(self) -> tuple[Any, ...]:
        # pickled whole (index, field and reason), to cross to and from worker processes
        return (_restored, (type(self), self.args), self.__dict__)


class NotAListError(OmniInputError, TypeError):
    """One item (a string, a path, a dict) passed where a list of items is expected.

    A ``TypeError`` (the argument has the wrong type) and an :class:`OmniInputError`, so callers
    catching either see it; raised before anything is embedded, never after a string was split
    into one item per character.
    """


@dataclass(frozen=True)
class ItemFailure:
    """An item skipped under ``errors="skip"``, reported instead of silently dropped."""

    index: int
    field: str
    reason: str

    @classmethod
    def from_error(cls, error: OmniInputError) -> ItemFailure:
        return cls(
            index=error.index if error.index is not None else -1, field=error.field, reason=error.reason
        )

    def __str__(self) -> str:
        return f"item {self.index}, field '{self.field}': {self.reason}"


def _restored(kind: type[BaseException], args: tuple[Any, ...]) -> BaseException:
    """An error rebuilt without its ``__init__`` (whose keywords pickle's default would drop)."""
    error = kind.__new__(kind, *args)
    error.args = args
    return error
