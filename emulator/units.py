"""Quantities as words: a value with its SI prefix, a count with its noun. The ground floor,
so that a study's one-line summaries (``compare``'s dominant terms) and the report's tables
say a quantity the same way."""

from __future__ import annotations


def si(value: float, unit: str) -> str:
    """``value`` with an SI prefix: 12300 ns → '12.3 µs' (ns and pJ are the base units)."""
    steps = {"ns": ["ns", "µs", "ms", "s"], "pJ": ["pJ", "nJ", "µJ", "mJ", "J"]}[unit]
    for name in steps[:-1]:
        if abs(value) < 1000:
            return f"{value:.3g} {name}"
        value /= 1000
    return f"{value:.3g} {steps[-1]}"


def count(n: int, noun: str) -> str:
    """``n`` and ``noun``, plural unless n is 1, thousands separated: '1 tile', '1,857 packets'."""
    return f"{n:,} {noun}" if n == 1 else f"{n:,} {noun}s"
