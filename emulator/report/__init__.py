"""What a run shows its user: text tables and summaries, plots, Perfetto traces and the
progress line. Nothing here computes a number the emulator reports; it only presents them.
"""
