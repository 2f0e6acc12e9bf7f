"""The cost model: one function per physical operation (:mod:`emulator.cost.physical`),
composed into the ops of both dataflows (:mod:`emulator.cost.model`), issued in each
dataflow's order on one list scheduler (:mod:`emulator.cost.timeline`) by
:mod:`emulator.cost.schedule`, at an activity (:mod:`emulator.cost.activity`)."""

from emulator.cost.activity import (
    Activity,
    OpActivity,
    default_pulses_per_cell,
    error_bit_rate,
    error_bit_rates,
    error_is_read,
    rate,
    write_activity,
    write_rates,
)
from emulator.cost.model import BUFFER_CLASSES, CostModel
from emulator.cost.schedule import (
    COMPONENTS,
    COUNTERS,
    DATAFLOWS,
    Op,
    Schedule,
    grad_order,
    grad_ready_ps,
    simulate,
    simulate_run,
    xbar_ready_ps,
)
from emulator.cost.timeline import FIXED, OpCost, Timeline, is_exclusive, start_ps

__all__ = [
    "BUFFER_CLASSES",
    "COMPONENTS",
    "COUNTERS",
    "DATAFLOWS",
    "FIXED",
    "Activity",
    "CostModel",
    "Op",
    "OpActivity",
    "OpCost",
    "Schedule",
    "Timeline",
    "default_pulses_per_cell",
    "error_bit_rate",
    "error_bit_rates",
    "error_is_read",
    "grad_order",
    "grad_ready_ps",
    "is_exclusive",
    "rate",
    "simulate",
    "simulate_run",
    "start_ps",
    "write_activity",
    "write_rates",
    "xbar_ready_ps",
]
