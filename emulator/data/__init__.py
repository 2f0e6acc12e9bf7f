"""The datasets a network trains on, read from the user's own files (nothing is downloaded).

One reader per format lives in :mod:`emulator.data.datasets`; ``pipesdfa data`` shows what
a dataset holds before a long run.
"""
