"""Keep a local Ray cluster on the loopback interface.

Ray 2.60 binds its GCS server, raylet, workers and runtime-env agent to the
node's address, which for a Linux node is the address other machines reach it
by: a local sweep then listens on every interface. A node whose address is the
loopback one binds 127.0.0.1 only, and Ray takes the loopback address when its
public switch ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER`` is ``0`` (the default on
macOS and Windows, where Ray runs single-node). Ray reads the switch once, when
``ray`` is imported, so it must be set before that; the command lines do it for
local runs only, since a driver joining a cluster needs its reachable address.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import sys
from pathlib import Path

__all__ = [
    "LOOPBACK_ENV",
    "TOKEN_FILE",
    "is_loopback",
    "keep_local_ray_on_loopback",
    "restrict_token_file",
]

LOOPBACK_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
TOKEN_FILE = Path("~/.ray/auth_token")


def keep_local_ray_on_loopback() -> bool:
    """Make a Ray node started later in this process listen on 127.0.0.1 only.

    Returns False (and changes nothing) when ``ray`` is already imported, the switch
    then being read already; callers check the node's address after ``ray.init``."""
    if "ray" in sys.modules:
        return False
    os.environ[LOOPBACK_ENV] = "0"
    return True


def is_loopback(address: str) -> bool:
    """Whether ``address`` (an IP, possibly bracketed or IPv4-mapped IPv6) is loopback."""
    try:
        ip = ipaddress.ip_address(address.strip("[]"))
    except ValueError:
        return address == "localhost"
    mapped = getattr(ip, "ipv4_mapped", None)
    return (mapped or ip).is_loopback


def restrict_token_file(path: Path = TOKEN_FILE) -> None:
    """Make Ray's token file readable by its owner only (Ray 2.60 writes it 0644)."""
    path = path.expanduser()
    with contextlib.suppress(OSError):
        if path.is_file() and path.stat().st_uid == os.getuid() and path.stat().st_mode & 0o077:
            path.chmod(0o600)
