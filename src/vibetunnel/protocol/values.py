"""Type checks of decoded JSON values, where `True` must not pass for the number 1."""

from __future__ import annotations

from typing import TypeGuard


def is_int(value: object) -> TypeGuard[int]:
    """An integer, and not a bool (JSON `true` decodes to one)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: object) -> TypeGuard[int | float]:
    """An int or a float, and not a bool."""
    return isinstance(value, int | float) and not isinstance(value, bool)
