"""Runtimes that move frames between the cores of :mod:`emulator.chip`.

``local``: one process, a deterministic queue (optionally shuffled, to prove that delivery
order changes nothing). ``ray``: one Ray actor per tile and PE core (or several cores per actor),
sending frames to each other directly through actor handles.
"""
