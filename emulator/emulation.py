"""``pipesdfa run``: train on the emulated chip, cores as actors (or in-process), and compare.

Builds the :class:`~emulator.plan.Plan`, starts a runtime, lets the
:class:`~emulator.cores.Controller` train and evaluate, then gathers the weights (their
``weights_sha256`` is the reference's: same blocks, same order, same keyed streams), the
crossbar counters and the NoC traffic.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from typing import Any

from emulator.cores import Controller, run_sha
from emulator.crossbar import Counters
from emulator.plan import Plan
from emulator.topology import ChipSpec, NetworkSpec
from emulator.training import load_for

RUNTIMES = ("ray", "local")


@contextlib.contextmanager
def ray_session(address: str | None, num_cpus: int | None = None) -> Iterator[None]:
    """Ray on local resources bound to 127.0.0.1 (started and shut down here), or the
    cluster at ``address``; an already initialised Ray is used as it is."""
    import ray

    if ray.is_initialized():
        yield
        return
    if address:
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    else:
        ray.init(
            num_cpus=num_cpus,
            include_dashboard=False,
            log_to_driver=False,
            _node_ip_address="127.0.0.1",
        )
    try:
        yield
    finally:
        ray.shutdown()


def run_emulation(
    net: NetworkSpec,
    chip: ChipSpec,
    *,
    dataset: str = "digits",
    data: str | None = None,
    runtime: str = "ray",
    address: str | None = None,
    algorithm: str = "sdfa",
    epochs: int | None = None,
    batch: int | None = None,
    lr: float | None = None,
    optimizer: str | None = None,
    seed: int = 0,
    frame_samples: int | None = None,
    cores_per_actor: int = 1,
    shuffle_seed: int | None = None,
    progress: Callable[[int, int, float], None] | None = None,
) -> dict[str, Any]:
    """Train ``net`` on ``chip`` through the cores; the JSON-able summary of the run."""
    start = time.perf_counter()
    epochs = net.training.epochs if epochs is None else epochs
    batch = net.training.batch if batch is None else batch
    plan = Plan(
        chip,
        net,
        seed,
        algorithm,
        net.training.lr if lr is None else lr,
        optimizer or net.training.optimizer,
    )
    data_set = load_for(net, dataset, data, seed)
    window = frame_samples or batch
    controller = Controller(
        plan, data_set, epochs=epochs, batch=batch, frame_samples=window, progress=progress
    )
    if runtime == "local":
        from emulator.runtime.local import LocalRuntime

        rt = LocalRuntime(plan, shuffle_seed=shuffle_seed)
        rt.run(controller)
        reports, actors, placement = rt.reports(), 0, []
    elif runtime == "ray":
        from emulator.runtime.ray_runtime import RayRuntime

        with ray_session(address):
            rt = RayRuntime(plan, cores_per_actor=cores_per_actor)
            try:
                rt.run(controller)
                reports, placement = rt.reports(), rt.placement()
            finally:
                rt.shutdown()
        actors = len(rt.actors)
    else:
        raise ValueError(f"runtime: {runtime!r} is not one of {', '.join(RUNTIMES)}")
    counters = _counters(reports)
    result: dict[str, Any] = {
        "network": net.name,
        "chip": chip.name,
        "dataset": dataset,
        "runtime": runtime,
        "algorithm": algorithm,
        "seed": seed,
        "epochs": epochs,
        "batch": batch,
        "frame_samples": window,
        "cores_per_actor": cores_per_actor if runtime == "ray" else None,
        **controller.accuracy(),
        "loss": controller.losses[-1] if controller.losses else None,
        "weights_sha256": run_sha(plan, reports),
        "counters": {k: c.as_dict() for k, c in counters.items()},
        "crossbar_energy_pj": {k: c.energy_pj(chip) for k, c in counters.items()},
        "frames": rt.frames,
        "actors": actors,
        "cores": {"tiles": len(plan.tiles), "pe_cores": len(plan.pe_cores)},
        "placement": placement,
    }
    result["wall_s"] = time.perf_counter() - start
    return result


def _counters(reports: list[dict[str, Any]]) -> dict[str, Counters]:
    """Crossbar counters summed over the weight arrays and over the feedback arrays."""
    total = {"weights": Counters(), "feedback": Counters()}
    for report in reports:
        for counts in report["counters"]:
            total["feedback" if report["feedback"] else "weights"].add(Counters(**counts))
    return total
