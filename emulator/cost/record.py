"""The activity of a reference training run on a chip's crossbar model, op by op, in the
record the emulated cores keep (:class:`~emulator.cost.OpActivity`) and by the same rules
(:func:`~emulator.cost.activity.rate`, :func:`~emulator.cost.activity.error_bit_rates`,
:func:`~emulator.cost.activity.write_rates`): so a dataflow the cores do not run (PipeLayer's
BPTT) is costed on activity measured exactly as PipeSDFA's is.

Per training sample, in training order: each weighted layer's input rate at every step (its
XBAR_READ), its mean input rate over the steps (its GRAD), the bit rate of the output error's
bit-serial read (0 where no error is read: one weighted layer); per batch and layer, the cells
its update wrote and the pulses per written cell (its WRITE). The reference trainer with
``sdfa`` on a PipeSDFA chip records what the cores record, bit for bit (the test of this
module).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from emulator.cost.activity import OpActivity, error_bit_rates, error_is_read, rate, write_rates
from emulator.learning import ReferenceModel, Trace
from emulator.physics.mapping import map_network
from emulator.spec import ChipSpec, NetworkSpec


class TrainingRecorder:
    """An observer of ``model``'s :meth:`ReferenceModel.train_batch` on ``chip`` (its layers
    must be :class:`~emulator.physics.blocks.ChipLayer`, whose counters give the writes; what
    they count before training, the initial programming, is not the training's)."""

    def __init__(self, chip: ChipSpec, net: NetworkSpec, model: ReferenceModel) -> None:
        self.net = net
        self.cells = [lm.unique_cells for lm in map_network(chip, net).layers]
        self.error_bits = chip.crossbar.error_bits
        self.reads_error = error_is_read(net)
        self.inputs: list[list[list[float]]] = []
        self.grads: list[list[float]] = []
        self.errors: list[float] = []
        self.writes: list[list[tuple[float, float]]] = []
        self.sizes: list[int] = []
        self._seen = [_written(b) for b in model.backends]  # (cells, pulses) so far, per layer

    def __call__(self, model: ReferenceModel, trace: Trace, e: np.ndarray) -> None:
        batch = len(e)
        layers = []  # per weighted layer: active inputs (T, B) and inputs per step
        for i in model.weighted:
            x = trace.x[i].reshape(trace.x[i].shape[0], batch, -1)
            layers.append((x.sum(axis=2).astype(int), x.shape[2]))
        for n in range(batch):
            self.inputs.append([[rate(int(a), size) for a in act[:, n]] for act, size in layers])
            self.grads.append(
                [rate(int(act[:, n].sum()), act.shape[0] * size) for act, size in layers]
            )
        self.errors += error_bit_rates(e, self.error_bits) if self.reads_error else [0.0] * batch
        writes = []
        for k, backend in enumerate(model.backends):
            now = _written(backend)
            cells, pulses = now[0] - self._seen[k][0], now[1] - self._seen[k][1]
            self._seen[k] = now
            writes.append(write_rates(self.cells[k], cells, pulses))
        self.writes.append(writes)
        self.sizes.append(batch)

    def record(self) -> OpActivity:
        """Everything observed so far as one record (:func:`~emulator.cost.simulate_run`)."""
        return OpActivity(
            network=self.net.name,
            batch=max(self.sizes),
            samples=sum(self.sizes),
            input_rates=self.inputs,
            grad_rates=self.grads,
            error_bit_rates=self.errors,
            writes=self.writes,
            batch_sizes=self.sizes,
        )


def _written(backend: Any) -> tuple[int, int]:
    """(cells written, pulses) a crossbar-backed layer has counted so far."""
    c = backend.counters()
    return c.cells_written, c.pulses
