"""daemon/redact.py: every secret key, separator and case; user info with and without password."""

from __future__ import annotations

import logging

import pytest

from daemon.redact import REDACTED, SECRET_QUERY_KEYS, RedactingFormatter, redact, redact_optional

SEPARATORS = ("?", "&", ";")


@pytest.mark.parametrize("key", SECRET_QUERY_KEYS)
@pytest.mark.parametrize("separator", SEPARATORS)
def test_every_secret_key_after_every_separator_in_either_case(key: str, separator: str) -> None:
    for spelled in (key.lower(), key.upper(), key.capitalize()):
        prefix = "http://h/p" if separator == "?" else "http://h/p?a=1"
        text = f"{prefix}{separator}{spelled}=s3cr3t&b=2 next"
        assert redact(text) == f"{prefix}{separator}{spelled}={REDACTED}&b=2 next", text


@pytest.mark.parametrize("key", ["pass", "PASS", "pwd", "auth", "sig", "key"])
def test_short_secret_keys_alone(key: str) -> None:
    """Short keys are secrets of their own, not only prefixes of longer ones."""
    assert redact(f"rtsp://cam/live?{key}=hunter2") == f"rtsp://cam/live?{key}={REDACTED}"


@pytest.mark.parametrize("key", ["passage", "keys", "monkey", "tokens", "x_token", "sigma"])
def test_other_keys_are_shown(key: str) -> None:
    """Only whole secret keys are redacted: a key that merely contains one is kept."""
    text = f"http://h/p?{key}=visible&z=1"
    assert redact(text) == text


@pytest.mark.parametrize(("text", "shown"), [
    ("http://user:pw@h/x", "http://***@h/x"),
    ("http://USER@h/x", "http://***@h/x"),                       # user alone
    ("rtsp://admin:p%40ss@[fe80::1]:554/s", "rtsp://***@[fe80::1]:554/s"),  # IPv6 + port
    ("http://u:p@[::1]:8000/live?token=t", "http://***@[::1]:8000/live?token=***"),
    ("HTTPS://U:P@Example.org:8443/", "HTTPS://***@Example.org:8443/"),
    ("mqtts://u:p@broker:8883 and icecast://source:pw@127.0.0.1:8000/live.mp3",
     "mqtts://***@broker:8883 and icecast://***@127.0.0.1:8000/live.mp3"),
    ("ws://[::1]:8765/?x=1", "ws://[::1]:8765/?x=1"),               # nothing secret
    ("mail me@example.org, x=1", "mail me@example.org, x=1"),       # not a URL
    ("no secrets here", "no secrets here"),
    ("http://h/a?password=a'b", "http://h/a?password=***'b"),      # stops at a quote
    ("http://h/a?secret=a#frag", "http://h/a?secret=***#frag"),    # and at a fragment
])
def test_user_info_and_values(text: str, shown: str) -> None:
    assert redact(text) == shown


def test_optional_and_formatter() -> None:
    assert redact_optional(None) is None
    assert redact_optional("http://a:b@h/") == "http://***@h/"
    record = logging.LogRecord("t", logging.ERROR, __file__, 1, "open %s failed", ("http://a:b@h/?key=k",),
                               None)
    assert RedactingFormatter("%(message)s").format(record) == "open http://***@h/?key=*** failed"
