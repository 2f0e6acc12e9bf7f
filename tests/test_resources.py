"""Security defaults and resource bounds of the Ray runtime (pure functions, no Ray)."""

from __future__ import annotations

import pytest

from emulator.chip.plan import Plan
from emulator.runtime.ray_runtime import ACTOR_BYTES, ResourceError, check_memory, memory_needed
from emulator.runtime.session import auth_warning
from emulator.spec import load_chip, load_network


def _plan() -> Plan:
    return Plan(load_chip("pipesdfa-edge"), load_network("digits-mlp"), 0, "sdfa", 0.003, "adam")


def test_memory_estimate_is_processes_plus_crossbar_state() -> None:
    plan = _plan()
    # digits-mlp on the edge chip: 64×128 and 128×10 weights at 8 columns per weight, the
    # 10×128 feedback matrix at 2 cells per entry, 3 float64 arrays per cell; 4 cores.
    cells = 64 * 128 * 8 + 128 * 10 * 8 + 10 * 128 * 2
    assert len(plan.cores) == 4
    assert memory_needed(plan, 1) == 4 * ACTOR_BYTES + cells * 8 * 3
    assert memory_needed(plan, 4) == 1 * ACTOR_BYTES + cells * 8 * 3


def test_a_run_too_big_for_the_cluster_is_refused_with_the_fix() -> None:
    plan = _plan()
    check_memory(plan, 1, memory_needed(plan, 1))  # exactly enough: no error
    with pytest.raises(
        ResourceError, match=r"4 cores in 4 actors need about .* use --cores-per-actor 2"
    ):
        check_memory(plan, 1, memory_needed(plan, 2))
    with pytest.raises(ResourceError, match="crossbars alone do not fit"):
        check_memory(plan, 1, 1000.0)


@pytest.mark.parametrize(
    ("address", "env", "warns"),
    [
        ("head.example:6379", {}, True),
        ("head.example:6379", {"RAY_AUTH_MODE": "token"}, False),
        ("head.example:6379", {"RAY_AUTH_MODE": "disabled"}, True),
        ("auto", {}, False),
    ],
)
def test_a_cluster_without_token_auth_is_warned_about(
    address: str, env: dict[str, str], warns: bool
) -> None:
    warning = auth_warning(address, env)
    assert (warning is not None) == warns
    if warns:
        assert address in warning and "token authentication is off" in warning
