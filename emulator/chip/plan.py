"""What every core of an emulated run knows in common: the chip, the network, the mapping,
which crossbar block sits on which PE core, and which tile is each layer's home.

Built deterministically from (chip, network, seed, training settings) on every process, so no
core needs to be told anything but its own name. Core names are ``tile-T`` and ``pe-T-P``
(T the tile index, P the PE index within the tile; :mod:`emulator.cost.noc`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property

from emulator.chip.frames import pe_name, tile_name
from emulator.cost import CostModel
from emulator.learning import init_weights, weighted_layers
from emulator.physics.blocks import initial_codes
from emulator.physics.mapping import ChipMapping, map_network
from emulator.physics.tiling import Block, feedback_blocks, weight_blocks
from emulator.spec import (
    ChipSpec,
    NetworkSpec,
    TrainingSpec,
    feedback_widths,
    layer_shapes,
    pools_after,
    training_options,
)


@dataclass(frozen=True)
class LayerPlan:
    """One weighted layer on the chip."""

    index: int  # position among the weighted layers
    net_index: int  # position in net.layers
    home: str  # the tile core that accumulates, runs the neurons and computes the update
    pes: tuple[str, ...]  # PE cores holding its weight blocks, in order
    blocks: tuple[Block, ...]  # weight blocks, in accumulation order
    block_pe: tuple[int, ...]  # index into ``pes`` of each block
    lsb: float  # weight per code unit
    pool_after: tuple[int, ...]  # net.layers indices of the pool layers that follow it
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]  # the neurons (before any pool)
    send_shape: tuple[int, ...]  # what leaves the layer (after its pools)

    def blocks_of(self, pe: str) -> list[int]:
        """Indices of the blocks on ``pe``, in order."""
        return list(self._owned[pe])

    @cached_property
    def _owned(self) -> dict[str, tuple[int, ...]]:
        return _owned(self.pes, self.block_pe)

    @property
    def positions(self) -> int:
        """im2col rows per sample (1 for fc)."""
        return math.prod(self.out_shape[1:]) if len(self.out_shape) == 3 else 1


@dataclass(frozen=True)
class FeedbackPlan:
    """The shared formed feedback group (C × M)."""

    home: str
    pes: tuple[str, ...]
    blocks: tuple[Block, ...]
    block_pe: tuple[int, ...]
    rows: int  # C: the output layer's neurons
    width: int  # M: the widest hidden layer

    def blocks_of(self, pe: str) -> list[int]:
        """Indices of the blocks on ``pe``, in order."""
        return list(self._owned[pe])

    @cached_property
    def _owned(self) -> dict[str, tuple[int, ...]]:
        return _owned(self.pes, self.block_pe)


@dataclass
class Plan:
    """The run's shared facts (see the module docstring)."""

    chip: ChipSpec
    net: NetworkSpec
    seed: int
    algorithm: str
    lr: float
    optimizer: str
    log_samples: int = 0  # the tiles log the ops of the first training samples (traces)
    window_credit: int = 2  # windows in the chip at once: the cores' bound on what they buffer
    epochs: int | None = None  # the run's epochs, for the learning-rate schedule (None: file's)
    mapping: ChipMapping = field(init=False)
    layers: list[LayerPlan] = field(init=False)
    feedback: FeedbackPlan | None = field(init=False)

    def __post_init__(self) -> None:
        if self.chip.dataflow != "pipesdfa":
            raise ValueError(
                f"chip {self.chip.name}: the emulation runs the pipesdfa dataflow; "
                f"{self.chip.dataflow} is evaluated by the cost model (pipesdfa compare)"
            )
        if self.algorithm == "bptt":
            raise ValueError(
                "algorithm: bptt needs layer-to-layer backward paths the PipeSDFA chip does "
                "not have; the emulation runs sdfa or sdfa-local-bptt"
            )
        off = [k for k in ("data", "batch") if not getattr(self.chip.pipeline, k)]
        if off:
            raise ValueError(
                f"chip {self.chip.name}: pipeline.{off[0]} is off; the cores stamp the "
                "three-level pipeline with the time-step level on or off, and the data and "
                "batch ablations run in the cost model (pipesdfa compare)"
            )
        self.mapping = map_network(self.chip, self.net)
        self.layers = self._layers()
        self.feedback = self._feedback()

    def _layers(self) -> list[LayerPlan]:
        shapes, weights = layer_shapes(self.net), init_weights(self.net, self.seed)
        weighted = weighted_layers(self.net)
        plans = []
        for k, (i, lm, w) in enumerate(zip(weighted, self.mapping.layers, weights, strict=True)):
            n_out, n_in = w.shape
            # the PE cores of one copy of W; replicas and a transposed copy are costed only
            held = -(-lm.block_arrays // self.chip.pe.crossbars)
            pes = tuple(pe_name(t, p) for t, p in lm.pes[:held])
            blocks = tuple(weight_blocks(self.chip, k, n_in, n_out))
            pools = pools_after(self.net, i)
            j = i + 1 + len(pools)
            plans.append(
                LayerPlan(
                    index=k,
                    net_index=i,
                    home=tile_name(lm.tiles[0]),
                    pes=pes,
                    blocks=blocks,
                    block_pe=_spread(len(blocks), len(pes), self.chip.pe.crossbars),
                    lsb=initial_codes(w, self.chip.crossbar)[1],
                    pool_after=tuple(pools),
                    in_shape=tuple(shapes[i]),
                    out_shape=tuple(shapes[i + 1]),
                    send_shape=tuple(shapes[j]),
                )
            )
        return plans

    def _feedback(self) -> FeedbackPlan | None:
        fb = self.mapping.feedback
        if fb is None:
            return None
        width = max(feedback_widths(self.net))
        rows = math.prod(self.layers[-1].out_shape)
        blocks = tuple(feedback_blocks(self.chip, fb.weighted, rows, width))
        pes = tuple(pe_name(t, p) for t, p in fb.pes)
        return FeedbackPlan(
            home=tile_name(fb.tiles[0]),
            pes=pes,
            blocks=blocks,
            block_pe=_spread(len(blocks), len(pes), self.chip.pe.crossbars),
            rows=rows,
            width=width,
        )

    @cached_property
    def schedule(self) -> TrainingSpec:
        """The run's training settings: the learning rate of each epoch (``epoch_lr``)."""
        return training_options(self.net, epochs=self.epochs, lr=self.lr, optimizer=self.optimizer)

    @cached_property
    def costs(self) -> CostModel:
        """The schedule's per-op costs, by which every core stamps its operations."""
        return CostModel(self.chip, self.net)

    @cached_property
    def tiles(self) -> list[str]:
        """Every tile core the run uses (tiles holding a PE core in use or serving a GRAD),
        in order."""
        costs = self.costs
        used = {int(pe.split("-")[1]) for pe in self.pe_cores}
        for i, lm in enumerate(self.mapping.layers):
            used |= {lm.tiles[k] for k in costs.grad_tiles(i)}
        return [tile_name(t) for t in sorted(used)]

    @cached_property
    def pe_cores(self) -> list[str]:
        """Every PE core the run uses, in placement order."""
        names = [pe for layer in self.layers for pe in layer.pes]
        if self.feedback is not None:
            names += list(self.feedback.pes)
        return names

    @property
    def cores(self) -> list[str]:
        """Every core: tiles, then PE cores."""
        return self.tiles + self.pe_cores


def _owned(pes: tuple[str, ...], block_pe: tuple[int, ...]) -> dict[str, tuple[int, ...]]:
    """The blocks of each PE core, in order."""
    owned: dict[str, list[int]] = {pe: [] for pe in pes}
    for j, k in enumerate(block_pe):
        owned[pes[k]].append(j)
    return {pe: tuple(js) for pe, js in owned.items()}


def _spread(blocks: int, pes: int, per_pe: int) -> tuple[int, ...]:
    """PE of each block: filled ``per_pe`` at a time, as the mapping counts arrays; spread
    evenly when the functional blocks outnumber the mapped arrays (conv under VW-SDK)."""
    if blocks <= pes * per_pe:
        return tuple(j // per_pe for j in range(blocks))
    return tuple(j * pes // blocks for j in range(blocks))
