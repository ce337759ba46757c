"""Credentials out of anything shown: ``user:password@`` in URLs and secret query values."""

from __future__ import annotations

import logging
import re

SECRET_QUERY_KEYS = ("token", "access_token", "key", "api_key", "apikey", "password",
                     "passwd", "pass", "pwd", "secret", "auth", "sig", "signature", "session")
"""Query parameters whose values are redacted (case-insensitive)."""
REDACTED = "***"

_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@?#]*@")
_QUERY = re.compile(r"(?i)([?&;](?:" + "|".join(SECRET_QUERY_KEYS) + r")=)[^&;#\s'\"]*")


def redact(text: str) -> str:
    """``text`` with URL user info and secret query parameter values replaced by ***."""
    if "@" not in text and "=" not in text:
        return text
    return _QUERY.sub(rf"\g<1>{REDACTED}", _USERINFO.sub(rf"\g<1>{REDACTED}@", text))


def redact_optional(text: str | None) -> str | None:
    """:func:`redact`, passing None through."""
    return None if text is None else redact(text)


class RedactingFormatter(logging.Formatter):
    """A log formatter whose output (message and traceback) is :func:`redact`-ed."""

    def format(self, record: logging.LogRecord) -> str:
        """The formatted record with credentials replaced by ***."""
        return redact(super().format(record))
