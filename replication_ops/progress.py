"""Progress bars on stderr (tqdm), off with --quiet or when stderr is not a terminal."""

from __future__ import annotations

import sys
import threading
from typing import Any

from tqdm import tqdm


class _Silent:
    def update(self, n: int = 1) -> None:
        pass

    def set_postfix_str(self, text: str) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self) -> _Silent:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


class Bar:
    """A thread-safe progress bar (or nothing)."""

    def __init__(
        self, description: str, *, total: int | None = None, enabled: bool = True, unit: str = "item"
    ):
        self._lock = threading.Lock()
        self._bar: Any = (
            tqdm(total=total, desc=description, unit=unit, file=sys.stderr, dynamic_ncols=True, leave=False)
            if enabled
            else _Silent()
        )

    def update(self, n: int = 1) -> None:
        with self._lock:
            self._bar.update(n)

    def note(self, text: str) -> None:
        with self._lock:
            self._bar.set_postfix_str(text)

    def close(self) -> None:
        with self._lock:
            self._bar.close()

    def __enter__(self) -> Bar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def bars_enabled(quiet: bool) -> bool:
    return not quiet and sys.stderr.isatty()
