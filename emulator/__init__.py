"""PipeSDFA emulator: a memristor compute-in-memory chip training SNNs with SDFA."""

__version__ = "0.1.0"
