"""Machine and date stamp for benchmark results files."""

from __future__ import annotations

import datetime as _dt
import os
import platform


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (platform.processor() where absent)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def machine_stamp() -> str:
    cpu = cpu_model()
    mem = ""
    try:
        pages, size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
        mem = f", {pages * size / 2**30:.0f} GiB"
    except (ValueError, OSError):
        pass
    now = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return (f"{now}; {platform.node()}; {platform.system()} {platform.release()} "
            f"{platform.machine()}; {cpu}; {os.cpu_count()} cores{mem}; "
            f"Python {platform.python_version()}")
