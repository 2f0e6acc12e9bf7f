"""``pipesdfa train``: load the data, build the reference model (ideal or on a chip), train.

The chip form puts every weighted layer on :class:`~emulator.physics.blocks.ChipLayer` crossbars and
the SDFA feedback on the formed arrays of :class:`~emulator.physics.blocks.ChipFeedback`; the
trainer itself (:func:`emulator.learning.train`) is the same code in both forms.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from emulator.cost import Activity, error_bit_rates, error_is_read
from emulator.cost.physical import counted_energy_pj
from emulator.data.datasets import Dataset, DatasetError, load_dataset
from emulator.learning import (
    Observer,
    ReferenceModel,
    feedback_widths,
    init_weights,
    network_inputs,
    train,
    validation_split,
    weighted_layers,
)
from emulator.learning.needs import training_needs
from emulator.limits import check_fits, mesh_need
from emulator.outputs import write_atomic
from emulator.physics.blocks import ChipFeedback, ChipLayer
from emulator.physics.crossbar import Counters
from emulator.physics.mapping import map_network
from emulator.spec import ChipSpec, NetworkSpec, layer_shapes, training_options


def load_for(
    net: NetworkSpec,
    name: str,
    data: str | None,
    seed: int,
    loading: Callable[[int, int], None] | None = None,
) -> Dataset:
    """Load dataset ``name`` shaped for ``net``, ``loading(done, total)`` after each recording
    read (:func:`~emulator.data.datasets.load_dataset`); a mismatch is a one-line
    DatasetError."""
    dataset = load_dataset(
        name,
        data,
        time_steps=net.time_steps,
        seed=seed,
        input_shape=tuple(net.input_shape),
        num_classes=net.num_classes,
        progress=loading,
        events=net.encoding == "events",
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


def check_batch(batch: int, samples: int, dataset: str) -> None:
    """Refuse a batch larger than the training set: it would train one short batch per
    epoch, silently."""
    if batch > samples:
        raise DatasetError(
            f"batch: {batch:,} samples, but {dataset}'s training set has {samples:,}: give "
            f"--batch {samples} or less"
        )


def check_seed(seed: int) -> None:
    """Refuse a negative seed (every keyed stream takes the seed as a non-negative word)."""
    if seed < 0:
        raise ValueError(f"seed: must be >= 0, got {seed}")


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


def fault_summary(chip: ChipSpec, stuck: list[tuple[int, int]]) -> dict[str, Any]:
    """What was injected: stuck cells over the programmable arrays (the chip file's fault
    map) and the dead NoC links routes detour around."""
    return {
        "stuck_at_gmin": sum(low for low, _ in stuck),
        "stuck_at_gmax": sum(high for _, high in stuck),
        "dead_links": list(chip.noc.dead_links),
    }


def chip_counters(model: ReferenceModel) -> dict[str, Counters]:
    """Counters of the weight crossbars and of the feedback arrays."""
    weights = Counters()
    for backend in model.backends:
        weights.add(backend.counters())
    feedback = model.feedback.counters() if hasattr(model.feedback, "counters") else Counters()
    return {"weights": weights, "feedback": feedback}


ACTIVITY_EVENT = 1_000_002
"""First element of the events of the activity-measuring pass (after the accuracy passes)."""


def measure_activity(
    model: ReferenceModel,
    data_set: Dataset,
    seed: int,
    counters: dict[str, Counters] | None,
    error_bits: int | None = None,
) -> Activity:
    """Spike rates of the trained model over the training set; write activity from counters.

    Input and output rates are the mean of every weighted layer's input spikes and of its
    neurons' spikes over all steps and samples. On a chip, ``write_fraction`` is the cells
    written per update over the layers' cells and ``pulses_per_cell`` the mean pulses per
    written cell, from the crossbar counters of the whole run; with ``error_bits`` (a chip's
    and a network with hidden layers, whose error is read) ``error_bit_rate`` is the mean bit
    rate of the output error's bit-serial read over the training set
    (:func:`emulator.cost.error_bit_rates`, as the cores record it).
    """
    weighted = weighted_layers(model.net)
    ones_in = np.zeros(len(weighted))
    ones_out = np.zeros(len(weighted))
    seen_in = np.zeros(len(weighted))
    seen_out = np.zeros(len(weighted))
    x, n = data_set.x_train, len(data_set.x_train)
    size = model.net.training.eval_batch
    bit_rates: list[float] = []
    for j, start in enumerate(range(0, n, size)):
        ids = np.arange(start, min(start + size, n))
        spikes = network_inputs(
            model.net,
            x[ids],
            temporal=data_set.temporal,
            seed=seed,
            key=("activity",),
            sample_ids=ids,
        )
        trace = model.forward(spikes, (ACTIVITY_EVENT, j))
        if error_bits is not None:
            e = model.output_error(trace.fr, data_set.y_train[ids])
            bit_rates += error_bit_rates(e, error_bits)
        for k, i in enumerate(weighted):
            ones_in[k] += trace.x[i].sum()
            seen_in[k] += trace.x[i].size
            ones_out[k] += trace.s[i].sum()
            seen_out[k] += trace.s[i].size
    fraction = pulses = None
    if counters is not None:
        fraction, pulses = _write_activity(model, counters)
    return Activity(
        network=model.net.name,
        input_rates=list(ones_in / seen_in),
        output_rates=list(ones_out / seen_out),
        write_fraction=fraction,
        pulses_per_cell=pulses,
        error_bit_rate=float(np.mean(bit_rates)) if bit_rates else None,
    )


def _write_activity(
    model: ReferenceModel, counters: dict[str, Counters]
) -> tuple[list[float], list[float]]:
    fractions, pulses = [], []
    for backend in model.backends:
        c = backend.counters()
        cells = backend.bank.cells
        updates = max(backend.updates, 1)
        fractions.append(min(1.0, c.cells_written / (cells * updates)))
        pulses.append(c.pulses / c.cells_written if c.cells_written else 0.0)
    return fractions, pulses


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
    activity_out: str | None = None,
    val_fraction: float = 0.0,
    loading: Callable[[int, int], None] | None = None,
    observe: Observer | None = None,
) -> dict[str, Any]:
    """Train the reference model; the JSON-able summary ``pipesdfa train --json`` prints.
    On a ``chip``, the chip must hold the network (:class:`~emulator.physics.mapping.MappingError`
    otherwise, as ``pipesdfa run``).

    ``activity_out`` names a file for the measured :class:`~emulator.cost.Activity`
    (``pipesdfa compare --activity``); ``observe`` sees every training batch
    (:meth:`~emulator.learning.ReferenceModel.train_batch`).
    """
    start = time.perf_counter()
    check_seed(seed)
    resolved = training_options(net, epochs=epochs, batch=batch)
    needs = training_needs(net, resolved.batch)
    check_fits(needs if chip is None else [*needs, mesh_need(chip)])
    if chip is not None:
        map_network(chip, net)  # MappingError: the chip cannot hold the network
    data_set = load_for(net, dataset, data, seed, loading)
    train_ids, _ = validation_split(len(data_set.x_train), val_fraction, seed)
    check_batch(resolved.batch, len(train_ids), dataset)
    if chip is None:
        model = ReferenceModel(net, algorithm=algorithm, seed=seed, lr=lr, optimizer=optimizer)
    else:
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
        val_fraction=val_fraction,
        observe=observe,
    )
    result.update(network=net.name, dataset=dataset, chip=chip.name if chip else None)
    counters = None
    if chip is not None:
        counters = chip_counters(model)
        result["counters"] = {k: c.as_dict() for k, c in counters.items()}
        result["energy_pj"] = {k: counted_energy_pj(chip, c) for k, c in counters.items()}
        stuck = [s for b in model.backends for s in b.bank.block_stuck()]
        result["faults"] = fault_summary(chip, stuck)
    if activity_out is not None:
        bits = chip.crossbar.error_bits if chip is not None and error_is_read(net) else None
        activity = measure_activity(model, data_set, seed, counters, bits)
        write_atomic(activity_out, activity.model_dump_json(indent=2))
        result["activity"] = activity.model_dump()
    result["wall_s"] = time.perf_counter() - start
    return result
