"""Typed errors for bad *input*: every one names the file, and limit errors name the setting.

Callers can branch on ``err.reason`` (a short machine code such as ``"corrupt"`` or
``"limit:max_pages"``) and show ``str(err)`` to the person who uploaded the file.
Problems with the path itself (missing file, no permission) stay ordinary ``OSError``\\ s.

All errors pickle cleanly (they are sent across process pools), so each class keeps
its constructor arguments in ``self.args``.
"""

from __future__ import annotations

import time


class InputError(Exception):
    """Base class: the content of ``source`` cannot be read."""

    reason = "invalid-input"

    def __init__(self, source: str, message: str):
        super().__init__(source, message)
        self.source = source
        self.message = message

    def __str__(self) -> str:
        return f"{self.source}: {self.message}"


class EmptyFile(InputError):
    reason = "empty"

    def __init__(self, source: str, message: str = "the file is empty (0 bytes)"):
        super().__init__(source, message)


class UnsupportedFormat(InputError):
    reason = "unsupported-format"


class CorruptFile(InputError):
    reason = "corrupt"


class LimitExceeded(InputError):
    """An input is larger than a configured limit; ``limit`` is the setting's name."""

    def __init__(self, source: str, limit: str, value: float, maximum: float, what: str = ""):
        self.limit, self.value, self.maximum, self.what = limit, value, maximum, what
        self.reason = f"limit:{limit}"
        message = (
            f"{what or limit} is {_fmt(value)}, over the limit {limit}={_fmt(maximum)} "
            f"(setting MEDKG_{limit.upper()})"
        )
        super().__init__(source, message)
        self.args = (source, limit, value, maximum, what)


def _fmt(v: float) -> str:
    return f"{v:,}" if isinstance(v, int) else f"{v:.4g}"


class PageTimeout(LimitExceeded):
    """A page took longer than ``page_timeout_s`` to decode/render/recognise."""

    def __init__(self, source: str, value: float, maximum: float, what: str = "page processing time (s)"):
        super().__init__(source, "page_timeout_s", value, maximum, what)
        self.args = (source, value, maximum, what)


class Deadline:
    """A time budget for one unit of work (one page), checked between steps.

    ``check()`` raises :class:`PageTimeout` once the budget is spent. It is cooperative:
    a single library call (a Pillow decode, a pdfium render, one inference call) cannot be
    interrupted, so a step that started before the deadline runs to completion and the
    timeout is raised at the next ``check()``. The pixel limits bound how long one such
    call can take.
    """

    def __init__(self, seconds: float, what: str):
        self.seconds = float(seconds)
        self.what = what  # e.g. "bill.pdf page 3", used as the error's source
        self._start = time.monotonic()

    def elapsed(self) -> float:
        return time.monotonic() - self._start

    def remaining(self) -> float:
        return max(0.0, self.seconds - self.elapsed())

    def expired(self) -> bool:
        return self.elapsed() > self.seconds

    def check(self) -> None:
        elapsed = self.elapsed()
        if elapsed > self.seconds:
            raise PageTimeout(self.what, elapsed, self.seconds)
