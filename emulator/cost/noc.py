"""The network-on-chip as the cost model sees it: mesh routing (XY, detours around dead
links) and the one place the NoC's cost formulas live (:func:`transfer_ns`,
:func:`transfer_energy_pj`), with the emulated bits of each message kind (:func:`value_bits`).

Wire *bytes* (what the emulator's actors exchange, :mod:`emulator.chip.frames`) differ from
emulated wire *bits* (what the chip's NoC would carry): :func:`value_bits` gives the latter.

Mesh positions are ``(row, col)``; node index = ``row * cols + col``. XY routing moves along X
(the column index) first, then along Y (the row index).
"""

from __future__ import annotations

from emulator.spec import ChipSpec

Position = tuple[int, int]
Link = tuple[Position, Position]

KINDS = ("spikes", "psum", "error", "feedback", "update", "control")
"""The kinds of message the cores exchange."""


def value_bits(chip: ChipSpec, kind: str) -> int:
    """Emulated NoC bits per payload value of a packet kind.

    A spike is one bit; a control packet carries no payload bits; partial sums, errors,
    projected errors and weight-code deltas travel as ``chip.tile.value_bits``-bit on-chip
    values (16 by default, ISAAC's datapath), although the emulator computes them in float64.
    Packet headers are not modelled: a packet's wire size is its payload.
    """
    if kind not in KINDS:
        raise ValueError(f"kind: {kind!r} is not one of {', '.join(KINDS)}")
    return {"spikes": 1, "control": 0}.get(kind, chip.tile.value_bits)


def packet_bits(chip: ChipSpec, kind: str, values: int) -> int:
    """Emulated NoC bits of one packet carrying ``values`` payload values (:func:`value_bits`)."""
    return value_bits(chip, kind) * values


# ----------------------------------------------------------------------------- routing


def node_index(pos: Position, cols: int) -> int:
    """Node index of mesh position ``(row, col)``: ``row * cols + col``."""
    return pos[0] * cols + pos[1]


def node_position(node: int, cols: int) -> Position:
    """Mesh position ``(row, col)`` of node index ``node``."""
    return divmod(node, cols)


def _position(pos: Position) -> Position:
    return (int(pos[0]), int(pos[1]))


def xy_route(src: Position, dst: Position) -> list[Link]:
    """Directed links of dimension-ordered XY routing from ``src`` to ``dst``.

    Positions are ``(row, col)``. The packet first moves along X (the column index) in the
    source row, then along Y (the row index) in the destination column. Empty if src == dst.
    """
    (r, c), (r1, c1) = src, dst
    links: list[Link] = []
    step = 1 if c1 > c else -1
    while c != c1:
        links.append(((r, c), (r, c + step)))
        c += step
    step = 1 if r1 > r else -1
    while r != r1:
        links.append(((r, c), (r + step, c)))
        r += step
    return links


class RouteError(ValueError):
    """No route between two nodes: dead links cut them apart."""


def route(src: Position, dst: Position, chip: ChipSpec) -> list[Link]:
    """The links a packet takes on ``chip``'s mesh: XY routing, or, when a dead link
    (``noc.dead_links``) lies on it, YX routing, or else the shortest detour (breadth-first,
    neighbours tried in the order +col, −col, +row, −row, so the choice is deterministic)."""
    dead = chip.noc.dead()
    xy = xy_route(src, dst)
    if not dead or not dead.intersection(xy):
        return xy
    yx = _yx_route(src, dst)
    if not dead.intersection(yx):
        return yx
    return _detour(src, dst, chip.noc.rows, chip.noc.cols, dead)


def _yx_route(src: Position, dst: Position) -> list[Link]:
    """Y first, then X."""
    flipped = xy_route((src[1], src[0]), (dst[1], dst[0]))
    return [((a[1], a[0]), (b[1], b[0])) for a, b in flipped]


def _detour(
    src: Position, dst: Position, rows: int, cols: int, dead: frozenset[Link]
) -> list[Link]:
    previous: dict[Position, Position] = {src: src}
    frontier = [src]
    while frontier and dst not in previous:
        nxt = []
        for r, c in frontier:
            for node in ((r, c + 1), (r, c - 1), (r + 1, c), (r - 1, c)):
                if (
                    0 <= node[0] < rows
                    and 0 <= node[1] < cols
                    and node not in previous
                    and ((r, c), node) not in dead
                ):
                    previous[node] = (r, c)
                    nxt.append(node)
        frontier = nxt
    if dst not in previous:
        raise RouteError(f"noc.dead_links: no route from node {src} to node {dst}")
    links, node = [], dst
    while node != src:
        links.append((previous[node], node))
        node = previous[node]
    return links[::-1]


def hops(src: Position, dst: Position) -> int:
    """Router hops between two positions: the Manhattan distance."""
    return abs(src[0] - dst[0]) + abs(src[1] - dst[1])


def transfer_ns(chip: ChipSpec, bits: int, hops: int) -> float:
    """Contention-free NoC latency of one packet, ns.

    ``hops × hop_latency_ns + ceil(bits / flit_bits) × (1000 / clock_mhz)``: router hops plus
    serialisation at one flit per clock cycle. A same-node transfer (0 hops) does not use the
    NoC and costs 0; 0 bits cost no serialisation.
    """
    if hops == 0:
        return 0.0
    flits = -(-bits // chip.noc.flit_bits)
    return hops * chip.noc.hop_latency_ns + flits * (1000.0 / chip.clock_mhz)


def transfer_energy_pj(chip: ChipSpec, bits: int, hops: int) -> float:
    """NoC energy of moving ``bits`` over ``hops`` hops, pJ: bits × hops × energy per bit-hop.

    The integer bit-hops are formed first, so summing bit-hops and converting once gives the
    same number as this function applied to the sum.
    """
    return (bits * hops) * chip.noc.energy_pj_per_bit_hop
