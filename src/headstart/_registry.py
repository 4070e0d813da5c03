"""A name -> object table that refuses unknown and duplicate names and suggests close ones."""

from __future__ import annotations

import difflib
from typing import Callable, Generic, TypeVar

from .errors import HeadstartError

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def add(item: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} '{name}' is registered twice")
            self._items[name] = item
            return item

        return add

    def get(self, name: str) -> T:
        if name not in self._items:
            raise HeadstartError(self.unknown_message(name))
        return self._items[name]

    def unknown_message(self, name: str, extra: str = "") -> str:
        close = difflib.get_close_matches(name, self.names(), n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ";"
        return f"unknown {self.kind} '{name}'{hint} known: {', '.join(self.names())}{extra}"

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: str) -> bool:
        return name in self._items
