"""Credentials out of anything shown: ``user:password@`` in URLs and secret query values."""

from __future__ import annotations

import logging
import re

SECRET_QUERY_KEYS = ("token", "access_token", "key", "api_key", "apikey", "password",
                     "passwd", "pass", "pwd", "secret", "auth", "sig", "signature", "session")
"""Query parameters whose values are redacted (case-insensitive)."""
REDACTED = "***"

_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s?#]*@")
"""User info up to the LAST ``@`` before the path, query or fragment: where ffmpeg (and
urllib) end it, so a password holding an unencoded ``@`` is hidden whole."""
_QUERY = re.compile(r"(?i)([?&;](?:" + "|".join(SECRET_QUERY_KEYS) + r")=)[^&;#\s'\"]*")


def redact(text: str) -> str:
    """``text`` with URL user info and secret query parameter values replaced by ***."""
    if "@" not in text and "=" not in text:
        return text
    return _QUERY.sub(rf"\g<1>{REDACTED}", _USERINFO.sub(rf"\g<1>{REDACTED}@", text))


def redact_url(url: str) -> str:
    """One URL without any user info (a password, or a token sent as the user name) and
    without secret query values; its authority is split as ffmpeg splits it."""
    scheme, found, rest = url.partition("://")
    if not found:
        return redact(url)
    authority, tail = _split_authority(rest)
    user_info, at, host = authority.rpartition("@")
    return redact(f"{scheme}://{REDACTED + at if at else ''}{host}{tail}")


def has_unbounded_user_info(url: str) -> bool:
    """True when ``url``'s user info holds whitespace, which no redaction of text can bound."""
    authority = _split_authority(url.partition("://")[2])[0]
    return any(character.isspace() for character in authority.rpartition("@")[0])


def _split_authority(after_scheme: str) -> tuple[str, str]:
    """(authority, the rest): the authority ends at the first / ? or # (as in ffmpeg)."""
    match = re.search(r"[/?#]", after_scheme)
    end = match.start() if match else len(after_scheme)
    return after_scheme[:end], after_scheme[end:]


def redact_optional(text: str | None) -> str | None:
    """:func:`redact`, passing None through."""
    return None if text is None else redact(text)


class RedactingFormatter(logging.Formatter):
    """A log formatter whose output (message and traceback) is :func:`redact`-ed."""

    def format(self, record: logging.LogRecord) -> str:
        """The formatted record with credentials replaced by ***."""
        return redact(super().format(record))
