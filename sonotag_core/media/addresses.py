"""Which network addresses count as the public internet: shared by link parsing
(:mod:`.sources`) and the connection guard (:mod:`.netguard`), so neither imports the other."""

from __future__ import annotations

import ipaddress


def is_public(ip: str) -> bool:
    """True for a globally routable unicast address (not loopback, private, link-local,
    shared, reserved, multicast or an IPv4-mapped form of those)."""
    try:
        addr = ipaddress.ip_address(str(ip).split("%", 1)[0])  # drop an IPv6 scope id
    except ValueError:
        return False
    return addr.is_global and not addr.is_multicast
