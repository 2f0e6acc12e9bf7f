"""The activity of a network, the input of the cost model: average rates
(:class:`Activity`, also the file ``pipesdfa train --activity-out`` writes) or every op's own
rates in an emulated run (:class:`OpActivity`), and the chip's assumed values where none was
measured (``chip.activity``)."""

from __future__ import annotations

from typing import Annotated

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from emulator.physics.readout import bit_planes
from emulator.spec import ChipSpec, NetworkSpec, weighted_layers

Rate = Annotated[float, Field(ge=0.0, le=1.0)]

# ---------------------------------------------------------- the rules every record follows


def rate(active: int, size: int) -> float:
    """A fraction of inputs active: the one formula every core and recorder measures with."""
    return active / size


def error_is_read(net: NetworkSpec) -> bool:
    """Whether a training of ``net`` reads its output error bit-serially (SDFA's feedback,
    BPTT's Wᵀ): only where hidden layers exist; else its error bit rate is 0."""
    return len(weighted_layers(net)) > 1


def error_bit_rates(e: np.ndarray, error_bits: int) -> list[float]:
    """Per row of ``e`` (B, n): the fraction of rows active over its bit-serial read, the
    sign-magnitude planes of ``error_bits`` bits (:func:`~emulator.physics.readout.bit_planes`)."""
    planes, _ = bit_planes(e, error_bits)
    reads = planes.shape[0] * planes.shape[1]
    return [rate(int(planes[:, :, i].sum()), reads * e.shape[1]) for i in range(len(e))]


def write_rates(cells: int, cells_written: int, pulses: int) -> tuple[float, float]:
    """(fraction of a layer's ``cells`` written, mean pulses per written cell) of one update."""
    return cells_written / cells, pulses / cells_written if cells_written else 0.0


# ------------------------------------------------------------------------------- activity


class Activity(BaseModel):
    """Spike and write activity of a network; also the file ``pipesdfa train --activity-out``.

    Lists hold one value per weighted layer, in order.
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    network: str = Field(description="Name of the network the activity was measured on.")
    input_rates: list[Rate] = Field(
        description="Mean fraction of each layer's input spikes that are 1, per step."
    )
    output_rates: list[Rate] = Field(description="Mean firing rate of each layer's neurons.")
    write_fraction: list[Rate] | None = Field(
        None,
        description="Fraction of each layer's cells written per batch (default: the chip's "
        "activity.write_fraction).",
    )
    pulses_per_cell: list[Annotated[float, Field(ge=0.0)]] | None = Field(
        None,
        description="Mean programming pulses per written cell (default: the chip's "
        "activity.pulses_per_cell, else one level step).",
    )
    error_bit_rate: Rate | None = Field(
        None,
        description="Fraction of rows active in one bit-plane read of a multi-bit error "
        "(default: the chip's activity.error_bit_rate).",
    )

    @model_validator(mode="after")
    def _lengths(self) -> Activity:
        n = len(self.input_rates)
        for name in ("output_rates", "write_fraction", "pulses_per_cell"):
            value = getattr(self, name)
            if value is not None and len(value) != n:
                raise ValueError(f"{name}: {len(value)} values, but input_rates has {n}")
        return self

    @classmethod
    def uniform(cls, net: NetworkSpec, rate: float) -> Activity:
        """Every layer's inputs and neurons spike at ``rate``; default write activity."""
        n = len(weighted_layers(net))
        return cls(network=net.name, input_rates=[rate] * n, output_rates=[rate] * n)

    def check(self, net: NetworkSpec) -> None:
        """Raise ValueError unless this activity was measured on ``net``."""
        if self.network != net.name:
            raise ValueError(f"activity: measured on {self.network!r}, not on {net.name!r}")
        if len(self.input_rates) != len(weighted_layers(net)):
            raise ValueError(
                f"activity: {len(self.input_rates)} layers, but {net.name} has "
                f"{len(weighted_layers(net))} weighted layers"
            )


NonNegFloat = Annotated[float, Field(ge=0.0)]


def write_activity(chip: ChipSpec, act: Activity, layer: int) -> tuple[float, float]:
    """(fraction of cells written per batch, mean pulses per written cell) of ``layer`` under
    ``act``: its measured values, else the chip's assumed ones (``chip.activity``)."""
    fraction = chip.activity.write_fraction
    if act.write_fraction:
        fraction = act.write_fraction[layer]
    pulses = act.pulses_per_cell[layer] if act.pulses_per_cell else default_pulses_per_cell(chip)
    return fraction, pulses


def error_bit_rate(chip: ChipSpec, act: Activity) -> float:
    """The error bit rate of ``act``, else the chip's assumed one."""
    return chip.activity.error_bit_rate if act.error_bit_rate is None else act.error_bit_rate


class OpActivity(BaseModel):
    """The activity of every op of one emulated run (JSON-able), replayed by
    :func:`simulate_run`: samples 0..samples−1 in batches of ``batch`` (the last may be
    smaller); layers are weighted layers, in order."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    network: str = Field(description="Name of the network the run trained.")
    batch: int = Field(ge=1, description="Samples per batch (the last batch may hold fewer).")
    samples: int = Field(ge=1, description="Samples in the run.")
    input_rates: list[list[list[Rate]]] = Field(
        description="[sample][layer][step]: fraction of the layer's inputs active (XBAR_READ)."
    )
    grad_rates: list[list[Rate]] = Field(
        description="[sample][layer]: the sample's mean input rate over the steps (GRAD)."
    )
    error_bit_rates: list[Rate] = Field(
        description="[sample]: fraction of rows active per bit-plane read of the error "
        "(FEEDBACK; PipeLayer: ERR and GRAD)."
    )
    writes: list[list[tuple[Rate, NonNegFloat]]] = Field(
        description="[batch][layer]: (fraction of the layer's cells written, mean pulses per "
        "written cell) of the batch's WRITE."
    )
    batch_sizes: list[Annotated[int, Field(ge=1)]] | None = Field(
        None,
        description="Samples of each batch when not all but the last hold ``batch`` (a run "
        "of several epochs: each epoch's last batch may be smaller); they sum to samples.",
    )

    def sizes(self) -> list[int]:
        """Samples of every batch, in order."""
        if self.batch_sizes is not None:
            return list(self.batch_sizes)
        return [min(self.batch, self.samples - s) for s in range(0, self.samples, self.batch)]

    @model_validator(mode="after")
    def _lengths(self) -> OpActivity:
        for name in ("input_rates", "grad_rates", "error_bit_rates"):
            if len(getattr(self, name)) != self.samples:
                raise ValueError(f"{name}: {len(getattr(self, name))} samples, not {self.samples}")
        if self.batch_sizes is not None and sum(self.batch_sizes) != self.samples:
            raise ValueError(
                f"batch_sizes: they sum to {sum(self.batch_sizes)}, not {self.samples}"
            )
        batches = len(self.sizes())
        if len(self.writes) != batches:
            raise ValueError(f"writes: {len(self.writes)} batches, not {batches}")
        layers = len(self.input_rates[0])
        for name in ("input_rates", "grad_rates", "writes"):
            for i, row in enumerate(getattr(self, name)):
                if len(row) != layers:
                    raise ValueError(f"{name}[{i}]: {len(row)} layers, not {layers}")
        return self

    def check(self, net: NetworkSpec) -> None:
        """Raise ValueError unless this record fits ``net`` (name, layers, time steps)."""
        if self.network != net.name:
            raise ValueError(f"record: of {self.network!r}, not of {net.name!r}")
        layers = len(weighted_layers(net))
        if len(self.input_rates[0]) != layers:
            raise ValueError(
                f"record: {len(self.input_rates[0])} layers, but {net.name} has {layers} "
                f"weighted layers"
            )
        for n, sample in enumerate(self.input_rates):
            for i, steps in enumerate(sample):
                if len(steps) != net.time_steps:
                    raise ValueError(
                        f"record: input_rates[{n}][{i}] has {len(steps)} steps, not "
                        f"{net.time_steps}"
                    )

    @classmethod
    def from_activity(
        cls, chip: ChipSpec, net: NetworkSpec, activity: Activity, *, batch: int, samples: int
    ) -> OpActivity:
        """A run whose every op has ``activity``'s average rates (its default writes on
        ``chip``): :func:`simulate_run` on it reproduces :func:`simulate`."""
        activity.check(net)
        layers = range(len(activity.input_rates))
        steps = [[rate] * net.time_steps for rate in activity.input_rates]
        writes = [write_activity(chip, activity, i) for i in layers]
        return cls(
            network=net.name,
            batch=batch,
            samples=samples,
            input_rates=[[list(s) for s in steps] for _ in range(samples)],
            grad_rates=[list(activity.input_rates) for _ in range(samples)],
            error_bit_rates=[error_bit_rate(chip, activity)] * samples,
            writes=[list(writes) for _ in range(-(-samples // batch))],
        )


def default_pulses_per_cell(chip: ChipSpec) -> float:
    """Pulses per written cell without a measured value: ``activity.pulses_per_cell``, else
    one cell level step in identical pulses, (pulse_levels − 1)/(2^cell_bits − 1)."""
    if chip.activity.pulses_per_cell is not None:
        return chip.activity.pulses_per_cell
    return (chip.device.pulse_levels - 1) / (2**chip.crossbar.cell_bits - 1)
