"""Counter-based random streams keyed by (seed, what, index...).

Every random number in the emulator comes from a stream named by what it is for (a crossbar
id, an event index), never from one shared generator, so the order in which cores or actors
run cannot change a number (DESIGN.md §4).
"""

from __future__ import annotations

import zlib

import numpy as np


def _word(part: int | str) -> int:
    if isinstance(part, str):
        return zlib.crc32(part.encode("utf-8"))
    if part < 0:
        raise ValueError(f"stream key parts must be non-negative, got {part}")
    return int(part)


def stream(seed: int, *key: int | str) -> np.random.Generator:
    """A Philox generator for ``(seed, *key)``; strings in the key are hashed with CRC-32.

    The same key always gives the same numbers; different keys give independent streams.
    """
    seq = np.random.SeedSequence(entropy=_word(seed), spawn_key=tuple(_word(k) for k in key))
    return np.random.Generator(np.random.Philox(seq))
