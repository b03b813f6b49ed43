"""What a handler raises to steer its job, and how the runtime words and spaces out what went wrong."""

from __future__ import annotations

from statemachine.payload_rules import MAX_ERROR_TEXT, MAX_RETRY_AFTER


class Retry(Exception):  # noqa: N818 - a request, not an error: `raise Retry(after=30)`
    """Raised by a handler: try this job again later.

    The job goes back to the queue (a `requeue` event, which uses up this attempt; with no
    attempts left the job fails) and is not claimed before `after` seconds, or before the
    worker's exponential backoff when `after` is None.
    """

    def __init__(self, reason: str = "retry requested", *, after: float | None = None) -> None:
        super().__init__(reason)
        if after is not None and not 0 <= after <= MAX_RETRY_AFTER:
            raise ValueError(f"after must be 0 to {MAX_RETRY_AFTER} seconds")
        self.after = after


class TransientError(Exception):
    """A failure worth another attempt (a network hiccup, a busy encoder): re-queued with backoff, like Retry()."""


def backoff_delay(attempt: int, base: float, ceiling: float) -> float:
    """Seconds before attempt `attempt` + 1 may start: `base` doubled per attempt made, at most `ceiling`."""
    return min(ceiling, base * 2 ** min(max(attempt - 1, 0), 30))


def error_text(exc: BaseException) -> str:
    """The error a failed or re-queued job records: '<Type>: <message>', storable and bounded.

    NUL and lone surrogates (which jsonb cannot hold) become U+FFFD; the text is cut to the
    payload rules' limit (MAX_ERROR_TEXT characters) with a trailing ellipsis.
    """
    message = str(exc)
    text = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    text = "".join("\ufffd" if ch == "\x00" or 0xD800 <= ord(ch) <= 0xDFFF else ch for ch in text)
    return text if len(text) <= MAX_ERROR_TEXT else text[:MAX_ERROR_TEXT - 1] + "\u2026"
