"""The Ray runtime: tiles and PE cores as Ray actors that send frames to each other directly.

One actor per core by default (named ``tile-T`` / ``pe-T-P``, so Ray's dashboard and state
API show which core is which); with ``cores_per_actor`` K > 1, up to K cores share one actor
process (named ``cores-G``; cores dealt round-robin, so each layer's PE cores spread over
every actor and read in parallel) and frames between them never leave it. Actors hold their
cores' crossbar conductances. Frames travel as msgpack bytes through fire-and-forget actor
calls (``deliver``), all the frames for one actor in one call; the driver is the
controller: it sends the input windows and errors and
collects what actors address to it with a blocking ``collect`` (threaded actors, so a
waiting ``collect`` does not stop deliveries). The shell only moves frames: all the physics
is in :mod:`emulator.chip`.
"""

from __future__ import annotations

import os
import resource
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from emulator.chip import CONTROLLER, Controller, PECore, TileCore
from emulator.chip.frames import FrameError, decode, encode
from emulator.chip.plan import Plan
from emulator.runtime.checkpoint import MAX_RESTARTS, Checkpoints, restore_cores, settled_states
from emulator.runtime.inbox import Inbox, stall_reasons
from emulator.runtime.session import RunFailed, SessionError, start_failure


class CoreGroup:
    """The body of one actor: some cores, the handles of every other actor.

    Frames carry the run's *generation*: after a failure every actor is put back to the last
    checkpoint under a new generation, and frames of the old one still travelling are dropped.
    """

    def __init__(
        self,
        plan: Plan,
        names: list[str],
        cpus: int | None = None,
        fail_at: tuple[str, int] | None = None,
    ) -> None:
        """``fail_at`` (core, batch): the process exits when that core gets its first frame
        of that training batch or a later one (a crash, for tests and demos)."""
        if cpus is not None:  # the emulator's own scaling: keep this process on `cpus` cores
            allowed = sorted(os.sched_getaffinity(0))
            os.sched_setaffinity(0, allowed[:cpus])
        self.plan = plan
        self.cores: dict[str, TileCore | PECore] = {name: _core(plan, name) for name in names}
        self.route: dict[str, Any] = {}
        self.first: dict[str, str] = {}  # each core's actor, named by its first core
        self.inbox = Inbox(set())
        self.outbox: list[bytes] = []
        self.lock = threading.Condition()
        self.generation = 0
        self.stale = 0  # frames of an earlier generation, dropped
        self.messages = 0  # deliveries (each a list of frames)
        self.busy_s = 0.0  # seconds spent handling them
        self.fail_at = fail_at

    def connect(self, route: dict[str, Any]) -> None:
        """Receive every core's actor handle (None for this actor's own cores)."""
        self.route = route
        self.inbox.known = {*route, CONTROLLER}
        first: dict[Any, str] = {}
        self.first = {name: first.setdefault(actor, name) for name, actor in route.items()}

    def deliver(self, frames: list[bytes], generation: int = 0) -> None:
        """Handle frames and everything they cause inside this actor; send the rest, one
        message per other actor at a time: what has piled up for it goes before this actor
        starts on work it caused itself (so the other actors work meanwhile), and at the
        end."""
        with self.lock:
            if generation != self.generation:
                self.stale += len(frames)
                return
            start = time.perf_counter()
            self.messages += 1
            pending = deque((raw, False) for raw in frames)
            away: dict[str, list[bytes]] = {}  # by the destination's actor (its first core)
            while pending:
                raw, caused_here = pending.popleft()
                if caused_here and away:
                    self._send(away)
                if self.fail_at is not None:
                    self._maybe_fail(raw)
                for out in self.inbox.open(raw, self.cores):
                    encoded = encode(out)
                    if out.dst == CONTROLLER:
                        self.outbox.append(encoded)
                    elif out.dst in self.cores:
                        pending.append((encoded, True))
                    else:
                        away.setdefault(self.first[out.dst], []).append(encoded)
            self._send(away)
            self.busy_s += time.perf_counter() - start
            self.lock.notify_all()

    def _send(self, away: dict[str, list[bytes]]) -> None:
        for core, frames in away.items():
            self.route[core].deliver.remote(frames, self.generation)
        away.clear()

    def _maybe_fail(self, raw: bytes) -> None:
        core, batch = self.fail_at  # type: ignore[misc]
        try:
            frame = decode(raw)
        except FrameError:
            return
        if frame.dst == core and frame.batch >= batch:
            os._exit(1)  # no clean-up: a crash

    def collect(self, timeout_s: float = 60.0) -> list[bytes]:
        """Frames for the controller; waits until there is one (or the timeout)."""
        with self.lock:
            if not self.outbox:
                self.lock.wait_for(lambda: bool(self.outbox), timeout_s)
            out, self.outbox = self.outbox, []
            return out

    def snapshot(
        self, batches: int, samples: int, generation: int, timeout_s: float
    ) -> dict[str, bytes] | None:
        """Its cores' packed states once all have settled after ``batches`` training batches;
        None if the run went back to a checkpoint meanwhile."""
        deadline = time.monotonic() + timeout_s
        with self.lock:
            while generation == self.generation:
                states = settled_states(self.cores, batches, samples)
                if states is not None:
                    return states
                left = deadline - time.monotonic()
                if left <= 0:
                    raise RuntimeError(
                        f"{', '.join(self.cores)}: not settled {timeout_s:.0f} s after batch "
                        f"{batches}" + stall_reasons([self.inbox.report()])
                    )
                self.lock.wait(left)
            return None

    def restore(self, generation: int, states: dict[str, bytes] | None) -> None:
        """Go back to a checkpoint (``states``; None: the run's start) as ``generation``."""
        with self.lock:
            self.generation = generation
            self.outbox = []
            if states is None:
                self.cores = {name: _core(self.plan, name) for name in self.cores}
            else:
                restore_cores(self.cores, states)
            self.lock.notify_all()

    def ping(self) -> int:
        """The generation (answers while the cores are busy: the caller checks liveness)."""
        return self.generation

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
            "messages": self.messages,
            "busy_s": round(self.busy_s, 3),
            "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
            "stale": self.stale,
            **self.inbox.report(),
        }


def actor_groups(cores: list[str], per_actor: int) -> list[list[str]]:
    """The cores of each actor: ⌈cores/per_actor⌉ actors, dealt round-robin in plan order, so
    that every layer's PE cores (consecutive in the plan) spread over all actors and read in
    parallel."""
    actors = -(-len(cores) // per_actor)
    return [cores[g::actors] for g in range(actors)]


def _core(plan: Plan, name: str) -> TileCore | PECore:
    return TileCore(plan, name) if name.startswith("tile-") else PECore(plan, name)


CoreActor = ray.remote(max_concurrency=4, num_cpus=0)(CoreGroup)
"""Threaded: a ``collect`` or ``snapshot`` may wait while deliveries go on, and ``ping``
answers throughout. ``num_cpus=0``: cores are placed whatever the cluster's CPU count (an
actor idles between frames); where they go is :func:`node_slots`'s choice."""


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


ACTOR_BYTES = 81 * 2**20
"""Memory of one idle actor process: the largest PSS measured on this project's machine
(Ray 2.60: 67–81 MiB)."""

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


class ActorDied(Exception):
    """Actors of the run died (their labels)."""

    def __init__(self, labels: list[str]) -> None:
        super().__init__(", ".join(labels))
        self.labels = labels


class RayRuntime:
    """Runs a :class:`Controller` against cores in Ray actors.

    An actor that dies is started again, every actor goes back to the last checkpoint
    (:class:`~emulator.runtime.checkpoint.Checkpoints`; the run's start if none was taken) and the
    controller replays the batches since: the results are those of an undisturbed run.
    """

    POLL_S = 2.0
    """How long the driver waits for the chip's output before it checks that every actor is
    alive (the delay before a lost actor is noticed)."""
    STALL_S = 60.0
    """No output for this long, every actor alive: the run has stalled."""

    def __init__(
        self,
        plan: Plan,
        *,
        cores_per_actor: int = 1,
        cpus: int | None = None,
        fail_at: tuple[str, int] | None = None,
        max_restarts: int = MAX_RESTARTS,
        notify: Callable[[str], None] | None = None,
    ) -> None:
        """``cpus``: pin every actor process to the machine's first ``cpus`` cores (Ray's
        ``num_cpus`` is a logical count and does not stop idle-placed actors from running in
        parallel). ``fail_at`` (core, batch): crash the actor holding that core when the core
        meets that training batch. ``max_restarts``: failures survived before giving up;
        ``notify`` hears of each as it happens."""
        if cores_per_actor < 1:
            raise ValueError(f"cores_per_actor: must be >= 1, got {cores_per_actor}")
        if max_restarts < 0:
            raise ValueError(f"max_restarts: must be >= 0, got {max_restarts}")
        self.plan, self.cpus, self.max_restarts = plan, cpus, max_restarts
        self.notify = notify
        check_memory(plan, cores_per_actor, ray.cluster_resources().get("memory", float("inf")))
        self.groups = actor_groups(plan.cores, cores_per_actor)
        self._group = {name: g for g, members in enumerate(self.groups) for name in members}
        self.labels = [
            members[0] if cores_per_actor == 1 else f"cores-{g}"
            for g, members in enumerate(self.groups)
        ]
        self.slots = node_slots()
        self.actors = [
            self._start(g, fail_at if fail_at and fail_at[0] in members else None)
            for g, members in enumerate(self.groups)
        ]
        self.route: dict[str, Any] = {}
        try:
            self._connect()
        except ray.exceptions.RayError as err:  # the actors never came up (limits, a crash)
            raise SessionError(start_failure(err)) from None
        self.generation = 0
        self.recoveries: list[dict[str, Any]] = []
        self.frames = 0  # frames the controller received (actors count their own)
        self.packets = 0

    def _start(self, g: int, fail_at: tuple[str, int] | None) -> Any:
        where = (
            NodeAffinitySchedulingStrategy(self.slots[g % len(self.slots)], soft=False)
            if self.slots
            else "SPREAD"
        )
        return CoreActor.options(name=self.labels[g], scheduling_strategy=where).remote(
            self.plan, self.groups[g], self.cpus, fail_at
        )

    def _connect(self) -> None:
        self.route = {
            name: actor
            for actor, members in zip(self.actors, self.groups, strict=True)
            for name in members
        }
        ray.get([actor.connect.remote(self.route) for actor in self.actors])

    def restore(self, states: dict[str, bytes] | None) -> None:
        """Put every core back to a checkpoint's packed states (None: the run's start);
        ValueError naming the core whose state does not fit."""
        try:
            ray.get(
                [
                    actor.restore.remote(
                        self.generation, None if states is None else _subset(states, members)
                    )
                    for actor, members in zip(self.actors, self.groups, strict=True)
                ]
            )
        except ray.exceptions.RayTaskError as err:  # the actor's own ValueError, not its trace
            if isinstance(err.cause, ValueError):
                raise ValueError(str(err.cause)) from None
            raise

    def run(self, controller: Controller, checkpoints: Checkpoints | None = None) -> None:
        """Send the controller's frames and collect what comes back until it is done; take
        the checkpoints it stops for (kept in memory if ``checkpoints`` is None); survive up
        to ``max_restarts`` dead actors."""
        checkpoints = checkpoints or Checkpoints(None, self.plan.cores)
        checkpoints.begin(controller)
        dead: list[str] = []
        while True:
            try:
                if dead:
                    self._recover(dead, controller, checkpoints)
                self._drive(controller, checkpoints)
                return
            except ActorDied as died:
                dead = died.labels
            except ray.exceptions.RayActorError:  # one more died while the run recovered
                dead = self._dead()
                if not dead:
                    raise
            if len(self.recoveries) >= self.max_restarts:
                raise RunFailed(
                    f"actor {', '.join(dead)} died after {len(self.recoveries)} restarts "
                    f"(--max-restarts {self.max_restarts}); the run gives up"
                )

    def _drive(self, controller: Controller, checkpoints: Checkpoints) -> None:
        self._send(controller.start())
        output_home = self.route[self.plan.layers[-1].home]
        quiet = 0.0
        while not controller.done:
            if controller.at_checkpoint:
                states = self._gather(controller.next_batch, controller.samples)
                checkpoints.save(controller, states)
                self._send(controller.release())
                continue
            try:
                batch = ray.get(output_home.collect.remote(self.POLL_S))
            except ray.exceptions.RayActorError:
                raise ActorDied(self._dead() or [self._label(output_home)]) from None
            if not batch:
                dead = self._dead()
                if dead:
                    raise ActorDied(dead)
                quiet += self.POLL_S
                if quiet >= self.STALL_S:
                    raise RunFailed(
                        f"the run stalled: no output from the chip for {quiet:.0f} s"
                        + stall_reasons(self.placement())
                    )
                continue
            quiet = 0.0
            for data in batch:
                frame = decode(data)
                self.frames += 1
                self.packets += frame.n_packets
                self._send(controller.handle(frame))

    def _gather(self, batches: int, samples: int) -> dict[str, bytes]:
        """Every core's packed state once all have settled after ``batches``."""
        refs = [
            actor.snapshot.remote(batches, samples, self.generation, self.STALL_S)
            for actor in self.actors
        ]
        while True:
            ready, _ = ray.wait(refs, num_returns=len(refs), timeout=self.POLL_S)
            if len(ready) == len(refs):
                break
            dead = self._dead()
            if dead:
                raise ActorDied(dead)
        states: dict[str, bytes] = {}
        try:
            for part in ray.get(refs):
                states.update(part)
        except ray.exceptions.RayActorError:
            dead = self._dead()
            if not dead:
                raise
            raise ActorDied(dead) from None
        return states

    def _dead(self) -> list[str]:
        """Labels of the actors that no longer answer because they died."""
        refs = [actor.ping.remote() for actor in self.actors]
        ready, _ = ray.wait(refs, num_returns=len(refs), timeout=10.0)
        dead = []
        for label, ref in zip(self.labels, refs, strict=True):
            if ref in ready:
                try:
                    ray.get(ref)
                except ray.exceptions.RayActorError:
                    dead.append(label)
        return dead

    def _label(self, actor: Any) -> str:
        return self.labels[self.actors.index(actor)]

    def _recover(self, labels: list[str], controller: Controller, checkpoints: Checkpoints) -> None:
        """Start the dead actors again, put every core back to the last checkpoint under a
        new generation (frames of the old one are dropped), rewind the controller."""
        lost = controller.next_batch
        dead = sorted(set(labels) | set(self._dead()))
        self.slots = node_slots()  # the nodes alive now: a lost node's actors go elsewhere
        for label in dead:
            g = self.labels.index(label)
            ray.kill(self.actors[g], no_restart=True)  # frees its name
            self.actors[g] = self._start(g, None)
        self._connect()
        self.generation += 1
        state, cores = checkpoints.restart_point()
        self.restore(cores)
        controller.restore(state)
        recovery = {
            "actors": dead,
            "restored_to_batch": controller.next_batch,
            "replayed_batches": lost - controller.next_batch,
        }
        self.recoveries.append(recovery)
        if self.notify is not None:
            self.notify(
                f"actor {', '.join(dead)} died: started again, every core back to training "
                f"batch {recovery['restored_to_batch']}, replaying "
                f"{recovery['replayed_batches']} batches"
            )

    def _send(self, frames: list) -> None:
        """The frames, one message per actor."""
        by_actor: dict[int, list[bytes]] = {}
        for frame in frames:
            by_actor.setdefault(self._group[frame.dst], []).append(encode(frame))
        for g, data in by_actor.items():
            self.actors[g].deliver.remote(data, self.generation)

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


def _subset(states: dict[str, bytes], names: list[str]) -> dict[str, bytes]:
    missing = [n for n in names if n not in states]
    if missing:
        raise ValueError(f"{missing[0]}: the checkpoint holds no state for this core")
    return {n: states[n] for n in names}
