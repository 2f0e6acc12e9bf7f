"""The physics of the chip's arrays: devices, crossbars, a layer's blocks and its mapping.

Called by the reference model's crossbar backends and by the chip's cores alike, so both
compute the same bits (:mod:`emulator.physics.blocks` holds the one copy of the arithmetic).
"""
