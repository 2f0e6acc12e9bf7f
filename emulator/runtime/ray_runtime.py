"""The Ray runtime: tiles and PE cores as Ray actors that send frames to each other directly.

One actor per core by default (named ``tile-T`` / ``pe-T-P``, so Ray's dashboard and state
API show which core is which); with ``cores_per_actor`` K > 1, K cores share one actor
process (named ``cores-G``) and frames between them never leave it. Actors hold their
cores' crossbar conductances. Frames travel as msgpack bytes through fire-and-forget actor
calls (``deliver``); the driver is the controller: it sends the input windows and errors and
collects what actors address to it with a blocking ``collect`` (threaded actors, so a
waiting ``collect`` does not stop deliveries). The shell only moves frames: all the physics
is in :mod:`emulator.cores`.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from emulator.cores import CONTROLLER, Controller, PECore, TileCore
from emulator.noc import decode, encode
from emulator.plan import Plan
from emulator.runtime.inbox import Inbox, stall_reasons


class CoreGroup:
    """The body of one actor: some cores, the handles of every other actor."""

    def __init__(self, plan: Plan, names: list[str], cpus: int | None = None) -> None:
        if cpus is not None:  # the emulator's own scaling: keep this process on `cpus` cores
            allowed = sorted(os.sched_getaffinity(0))
            os.sched_setaffinity(0, allowed[:cpus])
        self.cores: dict[str, TileCore | PECore] = {
            name: TileCore(plan, name) if name.startswith("tile-") else PECore(plan, name)
            for name in names
        }
        self.route: dict[str, Any] = {}
        self.inbox = Inbox(set())
        self.outbox: list[bytes] = []
        self.lock = threading.Condition()

    def connect(self, route: dict[str, Any]) -> None:
        """Receive every core's actor handle (None for this actor's own cores)."""
        self.route = route
        self.inbox.known = {*route, CONTROLLER}

    def deliver(self, data: bytes) -> None:
        """Handle one frame and everything it causes inside this actor; send the rest."""
        with self.lock:
            pending = [data]
            while pending:
                for out in self.inbox.open(pending.pop(0), self.cores):
                    raw = encode(out)
                    if out.dst == CONTROLLER:
                        self.outbox.append(raw)
                        self.lock.notify_all()
                    elif out.dst in self.cores:
                        pending.append(raw)
                    else:
                        self.route[out.dst].deliver.remote(raw)

    def collect(self, timeout_s: float = 60.0) -> list[bytes]:
        """Frames for the controller; waits until there is one (or the timeout)."""
        with self.lock:
            if not self.outbox:
                self.lock.wait(timeout_s)
            out, self.outbox = self.outbox, []
            return out

    def report(self) -> list[dict[str, Any]]:
        """Reports of this actor's cores."""
        with self.lock:
            return [core.report() for core in self.cores.values()]

    def placement(self) -> dict[str, Any]:
        """Where this actor runs, and how many frames it handled."""
        ctx = ray.get_runtime_context()
        return {
            "actor": ctx.get_actor_name(),
            "node": ctx.get_node_id(),
            "pid": os.getpid(),
            "cores": list(self.cores),
            "frames": self.inbox.frames,
            "packets": self.inbox.packets,
            **self.inbox.report(),
        }


CoreActor = ray.remote(max_concurrency=2, num_cpus=0)(CoreGroup)
"""Threaded (2): one thread may wait in ``collect`` while the other delivers. ``num_cpus=0``:
cores are placed whatever the cluster's CPU count (an actor idles between frames); where they
go is :func:`node_slots`'s choice."""


def node_slots() -> list[str]:
    """Where actor ``i`` goes: slot ``i`` modulo the list's length, a node ID. Every alive node
    with CPUs appears in proportion to its CPU count, interleaved, the driver's node first, so
    a cluster's cores spread over its nodes (on one machine, all land on it). The affinity is
    hard: an actor is never moved to another node (a run that loses a node fails anyway, its
    actors holding the cores' state). Ray 2.60's ``SPREAD`` strategy and soft node affinity
    both left actors that need no resources off their node on a two-node cluster: ``SPREAD``
    sometimes put all of a run's actors on one node."""
    here = ray.get_runtime_context().get_node_id()
    nodes = [n for n in ray.nodes() if n["Alive"] and n["Resources"].get("CPU", 0) > 0]
    nodes.sort(key=lambda n: (n["NodeID"] != here, n["NodeID"]))
    slots = []
    for rank, node in enumerate(nodes):
        cpus = max(1, round(node["Resources"]["CPU"]))
        slots += [(k / cpus, rank, node["NodeID"]) for k in range(cpus)]
    return [node_id for *_, node_id in sorted(slots)]


ACTOR_BYTES = 46 * 2**20
"""Memory of one idle actor process, measured on this project's machine (Ray 2.60: ≈ 46 MB)."""

CROSSBAR_STATE = 3
"""Per-cell arrays a crossbar keeps (conductances, levels, range), 8 bytes each."""


class ResourceError(ValueError):
    """A run that would not fit the Ray cluster's memory; the message has the numbers."""


def memory_needed(plan: Plan, cores_per_actor: int) -> int:
    """Bytes the actors of a run need: their processes plus their crossbars' state."""
    actors = -(-len(plan.cores) // cores_per_actor)
    cells = sum(
        b.n_in * b.n_out * plan.chip.crossbar.columns_per_weight
        for layer in plan.layers
        for b in layer.blocks
    )
    if plan.feedback is not None:
        cells += sum(b.n_in * b.n_out * 2 for b in plan.feedback.blocks)
    return actors * ACTOR_BYTES + cells * 8 * CROSSBAR_STATE


def check_memory(plan: Plan, cores_per_actor: int, available: float) -> None:
    """Refuse, before any actor starts, a run that needs more memory than ``available``."""
    needed = memory_needed(plan, cores_per_actor)
    if needed <= available:
        return
    fits = [
        k
        for k in range(cores_per_actor, len(plan.cores) + 1)
        if memory_needed(plan, k) <= available
    ]
    fix = (
        f"use --cores-per-actor {fits[0]}"
        if fits
        else "use a bigger cluster (the crossbars alone do not fit)"
    )
    actors = -(-len(plan.cores) // cores_per_actor)
    raise ResourceError(
        f"{len(plan.cores)} cores in {actors} actors need about {needed / 2**30:.2f} GiB "
        f"({actors} × {ACTOR_BYTES / 2**20:.0f} MiB + crossbar state), the Ray cluster has "
        f"{available / 2**30:.2f} GiB: {fix}"
    )


class RayRuntime:
    """Runs a :class:`Controller` against cores in Ray actors."""

    def __init__(self, plan: Plan, *, cores_per_actor: int = 1, cpus: int | None = None) -> None:
        """``cpus``: pin every actor process to the machine's first ``cpus`` cores (Ray's
        ``num_cpus`` is a logical count and does not stop idle-placed actors from running in
        parallel)."""
        if cores_per_actor < 1:
            raise ValueError(f"cores_per_actor: must be >= 1, got {cores_per_actor}")
        self.plan = plan
        check_memory(plan, cores_per_actor, ray.cluster_resources().get("memory", float("inf")))
        names = plan.cores
        groups = [names[i : i + cores_per_actor] for i in range(0, len(names), cores_per_actor)]
        self.actors = []
        route: dict[str, Any] = {}
        slots = node_slots()
        for g, members in enumerate(groups):
            label = members[0] if cores_per_actor == 1 else f"cores-{g}"
            where = (
                NodeAffinitySchedulingStrategy(slots[g % len(slots)], soft=False)
                if slots
                else "SPREAD"
            )
            actor = CoreActor.options(name=label, scheduling_strategy=where).remote(
                plan, members, cpus
            )
            self.actors.append(actor)
            route.update(dict.fromkeys(members, actor))
        ray.get([actor.connect.remote(route) for actor in self.actors])
        self.route = route
        self.frames = 0  # frames the controller received (actors count their own)
        self.packets = 0

    def run(self, controller: Controller) -> None:
        """Send the controller's frames; collect what comes back until it is done."""
        self._send(controller.start())
        output_home = self.route[self.plan.layers[-1].home]
        while not controller.done:
            batch = ray.get(output_home.collect.remote())
            if not batch:
                places = ray.get([a.placement.remote() for a in self.actors])
                raise RuntimeError(
                    "the run stalled: no output from the chip for 60 s" + stall_reasons(places)
                )
            for data in batch:
                frame = decode(data)
                self.frames += 1
                self.packets += frame.n_packets
                self._send(controller.handle(frame))

    def _send(self, frames: list) -> None:
        for frame in frames:
            self.route[frame.dst].deliver.remote(encode(frame))

    def reports(self) -> list[dict]:
        """Every core's report, in plan order (tiles, then PE cores)."""
        got = [r for batch in ray.get([a.report.remote() for a in self.actors]) for r in batch]
        order = {name: i for i, name in enumerate(self.plan.cores)}
        return sorted(got, key=lambda r: order[r["name"]])

    def placement(self) -> list[dict[str, Any]]:
        """Each actor's name, node, process, cores, and the frames and packets it received."""
        return ray.get([a.placement.remote() for a in self.actors])

    def shutdown(self) -> None:
        """Kill the actors."""
        for actor in self.actors:
            ray.kill(actor)
