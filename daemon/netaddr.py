"""Whether a bind address stays on this machine (the rule for tokens and remote sources)."""

from __future__ import annotations

import ipaddress
import socket


def is_loopback(host: str) -> bool:
    """True when ``host`` resolves, and every address it resolves to is loopback.

    A name is resolved (``127.attacker.example`` is not loopback because it starts with
    "127."); an unresolvable host or an empty one (every interface) is not loopback.
    """
    if not host.strip():
        return False
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
        addresses = {ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos}
    except (OSError, UnicodeError, ValueError):
        return False
    return bool(addresses) and all(address.is_loopback for address in addresses)
