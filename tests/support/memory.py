"""Memory, measured one way for every benchmark: a process tree's resident memory, and this process's peak."""

from __future__ import annotations

import resource
from dataclasses import dataclass

import psutil


@dataclass(frozen=True)
class Memory:
    """Resident memory of a process and its descendants, in MiB."""

    processes: int
    rss_mib: float
    pss_mib: float  # shared pages counted once: what the tree really costs (the RSS where the kernel has no PSS)


def tree_memory(pid: int) -> Memory:
    """RSS and PSS of ``pid`` and all its descendants (a gunicorn master and its workers, a Procfile service).

    A process that ends while it is measured is left out.
    """
    root = psutil.Process(pid)
    procs = [root, *root.children(recursive=True)]
    rss = pss = 0
    for proc in procs:
        try:
            info = proc.memory_full_info()
        except psutil.Error:
            continue
        rss += info.rss
        pss += getattr(info, "pss", info.rss)
    return Memory(len(procs), round(rss / 2**20, 1), round(pss / 2**20, 1))


def peak_rss_mib() -> float:
    """This process's peak RSS so far (Linux reports KiB): a benchmark runs each case in a fresh process."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
