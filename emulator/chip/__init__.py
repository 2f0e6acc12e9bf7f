"""The chip's cores as plain message handlers (no Ray): PE cores, tiles and the controller.

Every core has ``handle(frame) -> list[Frame]``: it consumes one frame and returns the frames
it sends. A runtime (:mod:`emulator.runtime`) only moves frames. The cores compute exactly
what the reference model computes with ``--chip`` (``emulator.physics.blocks``), in the same order:

- a **PE core** holds its crossbar blocks: it reads a window of input spikes (each read gets
  the noise of its rows of the whole batch), applies weight-code updates, and reads the
  formed feedback arrays bit-serially;
- a **tile** is the home of its layers: it buffers their input frames (input data reuse),
  forwards them to its PE cores, adds the partial sums in block order, runs the neurons,
  pools, sends the spikes on, keeps H and S, and at the end of a batch turns the error into
  the layer's update (:func:`emulator.learning.local_gradient`, the layer's own optimizer,
  stochastic rounding to codes) and sends each PE core its blocks' share; the feedback
  group's home tile assembles g = e·B/√M and sends each hidden layer its prefix;
- the **controller** encodes inputs, sends them in windows of samples, computes the output
  error, and measures accuracy.

Order never depends on delivery: frames carry a window sequence number (``seq``) and the
number of updates that must precede them (``version``); a core buffers what arrives early.

Emulated time: each tile owns the schedule's resources of its layers (their arrays, neuron
lanes and the NoC ops they send), of its gradient unit and of the feedback group it hosts,
and stamps every op by :class:`emulator.cost.CostModel` at the op's own activity, in the
schedule's issue order, starting at max(ready, the resource's free time) (:class:`Clock`).
Ready times travel in the frames (``ready_ps``, ``error_ps``) and, for gradient units on
other tiles, in ``control`` frames. The result equals
:func:`emulator.cost.simulate_run` on the run's recorded activity.
"""

from emulator.chip.clock import Clock, LoggedOp
from emulator.chip.controller import Controller, assemble_weights, run_sha
from emulator.chip.pe import PECore
from emulator.chip.tile import TileCore, rate
from emulator.chip.window import CONTROLLER, IN_FLIGHT, CreditError, Window, expect, window_credit

__all__ = [
    "CONTROLLER",
    "IN_FLIGHT",
    "Clock",
    "Controller",
    "CreditError",
    "LoggedOp",
    "PECore",
    "TileCore",
    "Window",
    "assemble_weights",
    "expect",
    "rate",
    "run_sha",
    "window_credit",
]
