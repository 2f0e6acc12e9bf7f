"""Growing a chip to hold a network: the same chip on a larger square mesh, one tile per node.

``compare``, ``run`` and ``map --grow`` grow both chips of a comparison alike: if either
does not hold the network, both move to the smallest k × k mesh that holds it on each
(:func:`fit_chips`), sized first by the PE cores the placement needs
(:func:`~emulator.physics.mapping.pe_cores_needed`).
"""

from __future__ import annotations

import math

from emulator.limits import check_fits, mesh_need
from emulator.physics.mapping import MappingError, map_network, pe_cores_needed
from emulator.spec import ChipSpec, NetworkSpec


def grown_chip(chip: ChipSpec, k: int) -> ChipSpec:
    """``chip`` on a k × k mesh with one tile per node."""
    noc = chip.noc.model_copy(update={"mesh": f"{k}x{k}"})
    return chip.model_copy(update={"name": f"{chip.name}@{k}x{k}", "tiles": k * k, "noc": noc})


def holds(chip: ChipSpec, net: NetworkSpec) -> bool:
    try:
        map_network(chip, net)
    except MappingError:
        return False
    return True


def fit_chips(net: NetworkSpec, *chips: ChipSpec) -> tuple[ChipSpec, ...]:
    """``chips`` unchanged if each holds ``net``, else all grown to the smallest square mesh
    that holds it on every one of them."""
    if all(holds(chip, net) for chip in chips):
        return chips
    tiles = max(-(-pe_cores_needed(chip, net) // chip.tile.pes) for chip in chips)
    k = math.isqrt(tiles - 1) + 1  # the smallest k with k² ≥ tiles
    check_fits([mesh_need(grown_chip(chips[0], k))])  # before any grown chip is mapped
    while not all(holds(grown_chip(chip, k), net) for chip in chips):
        k += 1  # never taken today: placement is tile-count bound; kept for safety
    return tuple(grown_chip(chip, k) for chip in chips)


def fit_chip(chip: ChipSpec, net: NetworkSpec) -> ChipSpec:
    """``chip``, or the smallest square-mesh chip like it that holds ``net``."""
    return fit_chips(net, chip)[0]
