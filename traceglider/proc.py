"""Telling processes apart on one machine: a pid means one process only within its pid
namespace (containers sharing a host name, or a /tmp, each have their own), and only
until it ends (a restarted container's server is PID 1 again). Linux /proc; elsewhere
these say nothing and callers fall back to expiry times."""

from __future__ import annotations

import os
from pathlib import Path


def pid_namespace() -> str | None:
    """This process's pid namespace (the inode of /proc/self/ns/pid)."""
    try:
        return str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:
        return None


def process_started(pid: int) -> str | None:
    """When a process of this namespace started (boot id and clock ticks since boot),
    to tell it from a later process given the same pid."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        stat = Path(f"/proc/{pid}/stat").read_text()
        return f"{boot}:{stat.rpartition(')')[2].split()[19]}"  # field 22, after "(comm)"
    except (OSError, IndexError):
        return None
