"""The datasets a network trains on, read from the user's own files (nothing is downloaded).

:mod:`emulator.data.datasets` picks the reader; one module per format (``digits``, ``idx``,
``nmnist``, ``shd``, ``dvsgesture``, ``braille``, ``synthetic``) reads it, on what they share
(:mod:`emulator.data.base`); ``pipesdfa data`` shows what a dataset holds before a long run.
"""
