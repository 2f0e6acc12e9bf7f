"""Counter-based random streams keyed by (seed, what, index...).

Every random number in the emulator comes from a stream named by what it is for (a crossbar
id, an event index), never from one shared generator, so the order in which cores or actors
run cannot change a number (docs/architecture.md#determinism).
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


def skip(generator: np.random.Generator, words: int) -> np.random.Generator:
    """``generator`` (of :func:`stream`) moved on by ``words`` 64-bit outputs, in O(1): its
    next doubles (``random``, ``uniform``: one output each) are those a draw of ``words``
    more from the start would have continued with (Philox counts four outputs a step)."""
    generator.bit_generator.advance(words // 4)
    if words % 4:
        generator.random(words % 4)
    return generator
