"""One rule for renamed options: the old name keeps working, warns, and never combines with the new."""

from __future__ import annotations

import warnings
from typing import TypeVar

T = TypeVar("T")


def renamed(old_value: T | None, new_value: T | None, *, old: str, new: str, owner: str) -> T | None:
    """The value given under either name; the old one warns, both at once is an error.

    Args:
        old_value: What the caller passed under the deprecated name (``None``: not passed).
        new_value: What the caller passed under the current name.
        old: The deprecated name, e.g. ``"max_batch_tokens"``.
        new: The current name.
        owner: Who takes the option, for the messages (``"OmniEmbedding"``).

    Raises:
        TypeError: Both names were passed.
    """
    if old_value is None:
        return new_value
    if new_value is not None:
        raise TypeError(f"{owner}: pass {new} or the deprecated {old}, not both")
    warnings.warn(f"{owner}({old}=...) is deprecated: pass {new}=...", DeprecationWarning, stacklevel=3)
    return old_value
