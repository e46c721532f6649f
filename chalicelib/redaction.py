"""Keeping secrets out of every text that leaves a worker: replies, records, log lines.

A `Redactor` is built from the secrets (the map sources' keys) and replaces every form of them a
text may carry. It matches a secret as a URL decoder, an HTML or a JSON parser would read it back:
each of its characters raw (in any letter case), percent-encoded (each UTF-8 byte as %XX, either hex
case, and encoded again up to three times: %252F), `+` for a space, an HTML character reference
(&amp;, &#47;, &#x2F;) or a JSON escape (\\u002f, \\/), in any mixture: so a URL with one character
of the key encoded, or all of them, or the key quoted twice, is redacted like the key itself. Its
base64 and base64url forms (padded or not, alone or inside a longer base64 text) are matched as
they are. A secret shorter than `MIN_SECRET_LENGTH` cannot be told apart from ordinary text: it is
not redacted (the fetcher refuses such a key). Redaction is the second line of defence: the
fetcher names a fetch by its source and origin, never by its URL's path or query.

The redactor in force belongs to the request being served: `activate` sets it in the
current context (the fetcher does, once it has its keys), `redact` applies it (the
runner does, to a did-fail's error) and `RedactingFilter`, installed on the loggers by
`install`, applies it to every log record. Standard library only.
"""

from __future__ import annotations

import base64
import contextvars
import functools
import html
import json
import logging
import re
import traceback
from collections.abc import Iterable
from typing import Any

MIN_SECRET_LENGTH = 4
MASK = "***"
# The loggers whose records can carry a request line: our own, the root, and the HTTP
# library's (urllib3 logs "GET /{client_id}_{client_secret}/..." at DEBUG, and the path
# of a retried request at WARNING).
LOGGERS = (
    "",
    "weathergif",
    "chalicelib",
    "requests",
    "urllib3",
    "urllib3.connection",
    "urllib3.connectionpool",
    "urllib3.poolmanager",
    "urllib3.response",
    "urllib3.util.retry",
)


class Redactor:
    """Replaces every form of the given secrets with `***`."""

    def __init__(self, secrets: Iterable[str]):
        self.secrets = tuple(sorted({s for s in secrets if s and len(s) >= MIN_SECRET_LENGTH}))
        exact: set[str] = set()  # base64: case is meaning
        for secret in self.secrets:
            exact.update(_base64_forms(secret.encode()))
        # The longest text a secret may take (an excerpt cut short drops this many characters).
        self.longest = max([*(_longest(secret) for secret in self.secrets), *(len(form) for form in exact)], default=0)
        # Longest first, so that a secret that starts another is not matched in its place.
        decoded = [_decoded(secret) for secret in sorted(self.secrets, key=len, reverse=True)]
        self._folded = re.compile("|".join(decoded), re.IGNORECASE) if decoded else None
        self._exact = _pattern(exact, 0)

    def __bool__(self) -> bool:
        return bool(self.secrets)

    def __call__(self, text: str) -> str:
        if self._folded is not None:
            text = self._folded.sub(MASK, text)
        if self._exact is not None:
            text = self._exact.sub(MASK, text)
        return text

    def scrub(self, value: Any) -> Any:
        """`value` with every text in it redacted: strings, and those in dicts, lists and tuples."""
        if not self:
            return value
        if isinstance(value, str):
            return self(value)
        if isinstance(value, dict):
            return {self.scrub(k): self.scrub(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return type(value)(self.scrub(v) for v in value)
        if isinstance(value, (int, float, bool, type(None))):
            return value
        try:
            text = str(value)
        except Exception:
            return value
        cleaned = self(text)
        return value if cleaned == text else cleaned

    def excerpt(self, data: bytes, limit: int, truncated: bool) -> str:
        """Up to `limit` characters of `data` as one line of text, redacted. When `data` is
        the start of something longer, its last characters (where a secret may be cut in
        two and so not recognised) are dropped first."""
        text = data.decode("utf-8", "replace")
        if truncated and self.longest:
            text = text[: max(0, len(text) - self.longest)]
        text = " ".join("".join(c if c.isprintable() else " " for c in self(text)).split())
        return self(text)[:limit]


NESTING = 3  # percent-encodings of a percent-encoding matched: %2F, %252F, %25252F, %2525252F


def _decoded(secret: str) -> str:
    """A pattern (to match ignoring case) of every spelling of `secret` that decodes to it: each
    character in any of the forms `_spellings` gives, independently of the others."""
    return "".join(_spellings(char) for char in secret)


@functools.lru_cache(maxsize=4096)
def _spellings(char: str) -> str:
    """A pattern of the ways a URL, an HTML page or a JSON text may spell `char`."""
    forms = [re.escape(char)]
    data = char.encode("utf-8", "surrogatepass")
    forms.append("".join(f"%(?:25){{0,{NESTING}}}{byte:02X}" for byte in data))  # percent-encoded, maybe again
    if char == " ":
        forms.append(r"\+")
    escaped = html.escape(char)
    if escaped != char:
        forms.append(re.escape(escaped))
    forms.append(f"&#0{{0,3}}{ord(char)};")  # an HTML character reference, decimal or hex
    forms.append(f"&#x0{{0,3}}{ord(char):x};")
    quoted = json.dumps(char)[1:-1]
    if quoted != char:
        forms.append(re.escape(quoted))
    if ord(char) < 0x10000:
        forms.append(f"\\\\u{ord(char):04x}")  # a JSON escape: \u002f
    else:
        forms.append(re.escape(json.dumps(char)[1:-1]))  # a surrogate pair
    return "(?:" + "|".join(forms) + ")"


def _longest(secret: str) -> int:
    """The most characters a spelling of `secret` takes: each of its characters percent-encoded as
    deeply as matched, or as an HTML reference or a JSON escape, whichever is longer."""
    return sum(max(len(char.encode("utf-8", "surrogatepass")) * (3 + 2 * NESTING), 12) for char in secret)


def _base64_forms(data: bytes) -> set[str]:
    forms: set[str] = set()
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        whole = encode(data).decode()
        forms.update({whole, whole.rstrip("=")})
        # Inside a longer base64 text the secret starts at one of three byte offsets; the
        # characters that only its own bits make are the same whatever surrounds it.
        for offset in (0, 1, 2):
            coded = encode(b"\0" * offset + data).decode().rstrip("=")
            start = -(-8 * offset // 6)
            end = 8 * (offset + len(data)) // 6
            core = coded[start:end]
            if len(core) >= MIN_SECRET_LENGTH:
                forms.add(core)
    return forms


def _pattern(forms: set[str], flags: int) -> re.Pattern[str] | None:
    if not forms:
        return None
    return re.compile("|".join(re.escape(f) for f in sorted(forms, key=len, reverse=True)), flags)


NONE = Redactor(())
_active: contextvars.ContextVar[Redactor] = contextvars.ContextVar("redactor", default=NONE)


def activate(redactor: Redactor) -> None:
    """Make `redactor` the one in force for the rest of the current context (one request)."""
    _active.set(redactor)


def active() -> Redactor:
    return _active.get()


def redact(text: str) -> str:
    """`text` with the secrets of the redactor in force removed."""
    return _active.get()(text)


def scoped() -> contextvars.Token[Redactor]:
    """Start a request with no redactor in force; give the token to `end_scope` after it."""
    return _active.set(NONE)


def end_scope(token: contextvars.Token[Redactor]) -> None:
    _active.reset(token)


_STANDARD_ATTRIBUTES = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}


class RedactingFilter(logging.Filter):
    """Redacts a log record (its message, extra fields, exception and stack text) with the
    redactor in force. Never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        redactor = _active.get()
        if not redactor:
            return True
        try:
            if isinstance(record.msg, (dict, list)):
                record.msg = redactor.scrub(record.msg)
                record.args = None
            else:
                try:
                    message = record.getMessage()
                except Exception:  # logging will print the message and its arguments as they are
                    record.msg, record.args = redactor(str(record.msg)), redactor.scrub(record.args)
                else:
                    cleaned = redactor(message)
                    if cleaned != message:
                        record.msg, record.args = cleaned, None
            for key, value in list(record.__dict__.items()):
                if key not in _STANDARD_ATTRIBUTES:
                    record.__dict__[key] = redactor.scrub(value)
            if record.exc_info and record.exc_info[0] is not None:
                text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
                cleaned = redactor(text)
                if cleaned != text:  # the formatters would print the exception again: give them the text
                    record.__dict__["exception_name"] = record.exc_info[0].__name__
                    record.__dict__["exception"] = cleaned
                    record.exc_info, record.exc_text = None, cleaned
            if record.exc_text:
                record.exc_text = redactor(record.exc_text)
            if record.stack_info:
                record.stack_info = redactor(record.stack_info)
        except Exception:  # a log line is never worth a failure; the record keeps what was done
            pass
        return True


FILTER = RedactingFilter()


def install(*loggers: logging.Logger | Any) -> None:
    """Put the filter on `loggers` (a Powertools Logger too), on those that can carry a request
    line (LOGGERS) and on the root logger's handlers. Safe to call again."""
    targets = [*loggers, *(logging.getLogger(name) for name in LOGGERS), *logging.getLogger().handlers]
    for target in targets:
        if FILTER not in target.filters:  # a Powertools Logger passes .filters to its logging.Logger
            target.addFilter(FILTER)
