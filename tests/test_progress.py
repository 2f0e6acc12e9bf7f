"""Tests of the progress line's numbers: samples per second and the one-line estimate."""

from __future__ import annotations

import io

import pytest

from emulator.report.progress import ESTIMATE_AFTER_S, Progress


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _progress(clock: Clock, **kw) -> tuple[Progress, io.StringIO]:
    out = io.StringIO()  # not a terminal: no bar, but the estimate line still comes
    return Progress("train", stream=out, batch=32, clock=clock, **kw), out


def test_samples_per_second_are_timed_from_the_first_batch_on() -> None:
    clock = Clock()
    p, _ = _progress(clock)
    p.update(1, 100)  # the first batch carries the set-up: the clock starts here
    assert p.rate(1) is None
    clock.now += 2.0
    p.update(5, 100)
    assert p.rate(5) == pytest.approx(4 * 32 / 2.0)


def test_the_estimate_is_said_once_with_the_time_left() -> None:
    clock = Clock()
    p, out = _progress(clock)
    p.update(1, 101)
    clock.now += ESTIMATE_AFTER_S / 2
    p.update(2, 101)
    assert out.getvalue() == ""  # too early to tell
    clock.now += ESTIMATE_AFTER_S / 2
    p.update(3, 101)  # 2 batches of 32 in ESTIMATE_AFTER_S s; 98 batches left
    left = 98 * ESTIMATE_AFTER_S / 2
    lines = out.getvalue().splitlines()
    assert len(lines) == 1 and "98 training batches left" in lines[0]
    assert f"{left // 60:.0f} min {left % 60:02.0f} s more" in lines[0]
    assert f"{64 / ESTIMATE_AFTER_S:,.1f} samples/s of batches 2-3" in lines[0]
    clock.now += 10
    p.update(4, 101)
    assert len(out.getvalue().splitlines()) == 1


def test_no_estimate_for_a_short_run_or_for_json() -> None:
    clock = Clock()
    p, out = _progress(clock)
    p.update(1, 6)
    clock.now += ESTIMATE_AFTER_S
    p.update(3, 6)  # 3 batches left at 2 batches per ESTIMATE_AFTER_S: a few seconds
    assert out.getvalue() == "" and p.estimated == ""
    quiet, out = _progress(clock, enabled=False)
    quiet.update(1, 1000)
    clock.now += 60
    quiet.update(2, 1000)
    assert out.getvalue() == "" and quiet.estimated is None
