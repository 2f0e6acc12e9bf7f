"""``pipesdfa train``: load the data, build the reference model (ideal or on a chip), train.

The chip form puts every weighted layer on :class:`~emulator.hardware.ChipLayer` crossbars and
the SDFA feedback on the formed arrays of :class:`~emulator.hardware.ChipFeedback`; the
trainer itself (:func:`emulator.learning.train`) is the same code in both forms.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from emulator.crossbar import Counters
from emulator.datasets import Dataset, DatasetError, load_dataset
from emulator.hardware import ChipFeedback, ChipLayer
from emulator.learning import (
    ReferenceModel,
    feedback_widths,
    init_weights,
    train,
    weighted_layers,
)
from emulator.topology import ChipSpec, NetworkSpec, layer_shapes


def load_for(net: NetworkSpec, name: str, data: str | None, seed: int) -> Dataset:
    """Load dataset ``name`` shaped for ``net``; a mismatch is a one-line DatasetError."""
    dataset = load_dataset(
        name,
        data,
        time_steps=net.time_steps,
        seed=seed,
        input_shape=tuple(net.input_shape),
        num_classes=net.num_classes if name == "synthetic" else None,
    )
    if dataset.num_classes > net.num_classes:
        raise DatasetError(
            f"{name}: has {dataset.num_classes} classes but network {net.name} has "
            f"num_classes {net.num_classes}"
        )
    wants_events = net.encoding == "events"
    if dataset.temporal != wants_events:
        kind = "event frames" if dataset.temporal else "static samples"
        raise DatasetError(
            f"{name}: gives {kind} but network {net.name} has encoding {net.encoding!r}"
        )
    return dataset


def chip_model(net: NetworkSpec, chip: ChipSpec, *, algorithm: str, seed: int, **kw: Any):
    """A :class:`ReferenceModel` whose layers and feedback run on ``chip``'s crossbars."""
    layers = [ChipLayer(chip, w, layer=i, seed=seed) for i, w in enumerate(init_weights(net, seed))]
    hidden = dict(enumerate(feedback_widths(net)))
    feedback = None
    if hidden:
        group = len(weighted_layers(net))
        feedback = ChipFeedback(chip, _outputs(net), hidden, seed=seed, group=group)
    return ReferenceModel(
        net, algorithm=algorithm, seed=seed, layer_backends=layers, feedback=feedback, **kw
    )


def _outputs(net: NetworkSpec) -> int:
    return math.prod(layer_shapes(net)[-1])


def chip_counters(model: ReferenceModel) -> dict[str, Counters]:
    """Counters of the weight crossbars and of the feedback arrays."""
    weights = Counters()
    for backend in model.backends:
        weights.add(backend.counters())
    feedback = model.feedback.counters() if hasattr(model.feedback, "counters") else Counters()
    return {"weights": weights, "feedback": feedback}


def run_training(
    net: NetworkSpec,
    *,
    chip: ChipSpec | None,
    dataset: str,
    data: str | None,
    algorithm: str,
    seed: int,
    epochs: int | None = None,
    batch: int | None = None,
    lr: float | None = None,
    optimizer: str | None = None,
    progress: Callable[[int, int, float], None] | None = None,
) -> dict[str, Any]:
    """Train the reference model; the JSON-able summary ``pipesdfa train --json`` prints."""
    start = time.perf_counter()
    data_set = load_for(net, dataset, data, seed)
    model = None
    if chip is not None:
        model = chip_model(net, chip, algorithm=algorithm, seed=seed, lr=lr, optimizer=optimizer)
    result = train(
        net,
        data_set,
        algorithm=algorithm,
        seed=seed,
        epochs=epochs,
        batch=batch,
        lr=lr,
        optimizer=optimizer,
        model=model,
        progress=progress,
    )
    result.update(network=net.name, dataset=dataset, chip=chip.name if chip else None)
    if model is not None and chip is not None:
        counters = chip_counters(model)
        result["counters"] = {k: c.as_dict() for k, c in counters.items()}
        result["energy_pj"] = {k: c.energy_pj(chip) for k, c in counters.items()}
    result["wall_s"] = time.perf_counter() - start
    return result
