"""Shared fixtures: one Ray session for the whole test run (never one per test)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

# Ray's single-machine mode: every port on 127.0.0.1 (read when ray is imported; see
# emulator.runtime.session.loopback_ray).
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[None]:
    """Ray on 2 local CPUs bound to loopback, or the cluster at $RAY_ADDRESS."""
    import ray

    if os.environ.get("RAY_ADDRESS"):
        ray.init(include_dashboard=False, log_to_driver=False)
    else:
        from emulator.runtime.session import use_local_token

        use_local_token()  # not Ray's own ~/.ray/auth_token, which it makes 0644
        ray.init(
            address="local",  # a new instance, even if another Ray runs on this machine
            num_cpus=2,
            include_dashboard=False,
            log_to_driver=False,
            _node_ip_address="127.0.0.1",
        )
    yield
    ray.shutdown()


@pytest.fixture
def kept_timeline(monkeypatch: pytest.MonkeyPatch) -> dict:
    """The emulated timeline (cycles, energy, the cores' activity record) of the next
    in-process run, kept under ``"timeline"`` as ``emulator.run`` assembles it."""
    import emulator.run as emulation

    captured: dict = {}
    original = emulation.emulated_timeline

    def keep(plan, reports, sizes):
        captured["timeline"] = original(plan, reports, sizes)
        return captured["timeline"]

    monkeypatch.setattr(emulation, "emulated_timeline", keep)
    return captured
