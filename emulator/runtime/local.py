"""The in-process runtime: every core in this process, frames through a queue.

Each frame goes through the msgpack codec like a real message. With ``shuffle_seed`` set,
the next frame to deliver is drawn at random from everything in flight, so a test can show
that delivery order changes no result (docs/architecture.md#determinism).
"""

from __future__ import annotations

from collections import deque

import numpy as np

from emulator.chip import CONTROLLER, Controller, PECore, TileCore
from emulator.chip.frames import encode
from emulator.chip.plan import Plan
from emulator.runtime.checkpoint import Checkpoints, restore_cores, settled_states
from emulator.runtime.inbox import Inbox, stall_reasons


class LocalRuntime:
    """Runs a :class:`Controller` against in-process cores."""

    def __init__(self, plan: Plan, *, shuffle_seed: int | None = None) -> None:
        self.plan = plan
        self.cores: dict[str, TileCore | PECore] = {}
        for name in plan.tiles:
            self.cores[name] = TileCore(plan, name)
        for name in plan.pe_cores:
            self.cores[name] = PECore(plan, name)
        self.inbox = Inbox({*self.cores, CONTROLLER})
        self.rng = None if shuffle_seed is None else np.random.default_rng(shuffle_seed)
        self.bytes = 0
        self.injected: list[bytes] = []  # test hook: raw messages delivered first

    def run(self, controller: Controller, checkpoints: Checkpoints | None = None) -> None:
        """Deliver frames until the controller is done; at each of its checkpoint boundaries
        the queue has drained, and the cores' states go to ``checkpoints``."""
        cores = {**self.cores, CONTROLLER: controller}
        queue: deque[bytes] = deque([*self.injected, *(encode(f) for f in controller.start())])
        while True:
            while queue:
                if self.rng is not None:
                    queue.rotate(-int(self.rng.integers(len(queue))))
                data = queue.popleft()
                self.bytes += len(data)
                queue.extend(encode(f) for f in self.inbox.open(data, cores))
            if not controller.at_checkpoint:
                break
            if checkpoints is not None:
                self._checkpoint(controller, checkpoints)
            queue.extend(encode(f) for f in controller.release())
        if not controller.done:
            raise RuntimeError(
                "the run stalled: frames ran out before the controller was done"
                + stall_reasons([self.inbox.report()])
            )

    def _checkpoint(self, controller: Controller, checkpoints: Checkpoints) -> None:
        states = settled_states(self.cores, controller.next_batch, controller.samples)
        if states is None:
            raise RuntimeError(
                f"the run stalled before the checkpoint after batch {controller.next_batch}: "
                "frames ran out with work left" + stall_reasons([self.inbox.report()])
            )
        checkpoints.save(controller, states)

    def restore(self, states: dict[str, bytes]) -> None:
        """Put every core back to a checkpoint's state."""
        restore_cores(self.cores, states)

    @property
    def frames(self) -> int:
        """Frames delivered."""
        return self.inbox.frames

    @property
    def packets(self) -> int:
        """Packets in the frames delivered."""
        return self.inbox.packets

    def reports(self) -> list[dict]:
        """Every core's report, in plan order (tiles, then PE cores)."""
        return [self.cores[name].report() for name in self.plan.cores]
