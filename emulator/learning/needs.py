"""What training a network holds in memory, checked against the machine before it starts
(:func:`emulator.limits.check_fits`; the per-value figures are the ground floor's)."""

from __future__ import annotations

import math

from emulator.limits import LAYER_STEP_VALUES, NEURON_STEP_BYTES, WEIGHT_BYTES, Need
from emulator.spec import ConvLayer, FcLayer, NetworkSpec, layer_shapes


def training_needs(net: NetworkSpec, batch: int) -> list[Need]:
    """What training ``net`` in batches of ``batch`` holds: one batch's traces, and the
    largest layer's working arrays (evaluation runs in batches of the network's
    ``eval_batch``), and the weights."""
    shapes = layer_shapes(net)
    neurons = sum(math.prod(s) for s in shapes)
    working, weights = 0, 0
    for layer, shape_in, shape_out in zip(net.layers, shapes[:-1], shapes[1:], strict=True):
        columns = 0
        if isinstance(layer, ConvLayer):
            window = layer.kernel**2 * shape_in[0]
            columns = math.prod(shape_out[1:]) * window  # im2col's unrolled input
            weights += window * layer.out_channels
        elif isinstance(layer, FcLayer):
            weights += math.prod(shape_in) * layer.out
        working = max(working, columns + LAYER_STEP_VALUES * math.prod(shape_out))
    rows = max(batch, net.training.eval_batch)
    per_step = neurons * NEURON_STEP_BYTES + working * 8
    return [
        Need(
            f"network {net.name}'s spike and membrane traces",
            rows * net.time_steps * per_step,
            f"{rows} samples × time_steps {net.time_steps:,} × ({neurons:,} neurons × "
            f"{NEURON_STEP_BYTES} B + {working:,} working values × 8 B)",
            "fewer time_steps or narrower layers in the network file, or a smaller batch "
            "(training.batch, training.eval_batch)",
        ),
        Need(
            f"network {net.name}'s weights",
            weights * WEIGHT_BYTES,
            f"{weights:,} weights × {WEIGHT_BYTES} B",
            "narrower layers in the network file",
        ),
    ]
