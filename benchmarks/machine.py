"""What every benchmark prints about the machine it ran on.

Figures from two machines compare only through these lines: the project's 2-core machines have
differed by a factor of two in the same hour's work (docs/PERFORMANCE.md), with nothing but the
CPU's speed to tell them apart. The Python speed is a plain loop, best of three, so that the load
of the moment costs it as little as it can.
"""

from __future__ import annotations

import os
import time

PROBE_ADDITIONS = 5_000_000


def load_figures() -> str:
    """The 1, 5 and 15-minute load averages, e.g. "1.48 2.60 3.46"."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def load_average() -> str:
    return f"load average {load_figures()} on {os.cpu_count()} CPUs"


def python_seconds() -> float:
    """Best of three: seconds a pure-Python loop of PROBE_ADDITIONS additions takes here."""
    best = float("inf")
    for _ in range(3):
        started, total = time.perf_counter(), 0
        for i in range(PROBE_ADDITIONS):
            total += i
        best = min(best, time.perf_counter() - started)
    return best


def describe() -> str:
    """One line: cores, load and the Python speed probe."""
    return f"{load_average()}; Python speed probe: {PROBE_ADDITIONS:,} additions in {python_seconds():.2f}s (best of 3)"
