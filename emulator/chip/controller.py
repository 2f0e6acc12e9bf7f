"""The controller (feeds the batches in windows, turns outputs into errors, measures
accuracy) and the run's weights gathered from the cores' reports."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from emulator.chip.frames import Error, Frame, Spikes
from emulator.chip.plan import Plan
from emulator.chip.window import CONTROLLER, IN_FLIGHT, Window, expect, window_credit
from emulator.learning import (
    EVAL_EVENT_TEST,
    EVAL_EVENT_TRAIN,
    loss_value,
    network_inputs,
    output_error,
    weights_sha256,
)
from emulator.learning.snn import pool_steps
from emulator.rng import stream
from emulator.spec import pools_after


@dataclass
class _Pending:
    """A batch in flight at the controller."""

    window_size: int
    ids: np.ndarray
    labels: np.ndarray
    event: tuple[int, int]
    version: int
    mode: str
    first_seq: int
    base: int
    spikes: np.ndarray | None = None  # output spikes (T, B, C_out) as they arrive
    error_ps: list[int] = field(default_factory=list)  # NOC_ERROR ends, by row
    rows: int = 0


class Controller:
    """Feeds the batches, turns outputs into errors, measures accuracy.

    Training follows :func:`emulator.learning.train` exactly (sample order, encoding keys,
    events); then the train and test sets are evaluated in batches of the network's
    ``eval_batch``. Pool layers before the first weighted layer are input preprocessing: the
    controller pools the spikes before it sends them (off the chip, uncosted). ``in_flight``
    batches may be in the chip at once. A batch travels in windows of ``frame_samples``
    samples (None: the whole batch in one window).

    With ``checkpoint_every`` N, feeding stops after every N-th training batch (and after the
    last) until the runtime has taken a checkpoint (:attr:`at_checkpoint`, :meth:`release`):
    the chip drains, every core settles, and the state is consistent without any frame in
    flight. Results do not change, since no result depends on when a frame arrives.
    """

    def __init__(
        self,
        plan: Plan,
        dataset: Any,
        *,
        epochs: int,
        batch: int,
        frame_samples: int | None,
        in_flight: int = IN_FLIGHT,
        checkpoint_every: int | None = None,
        progress: Callable[[int, int, float], None] | None = None,
    ) -> None:
        if checkpoint_every is not None and checkpoint_every < 1:
            raise ValueError(f"checkpoint_every: must be >= 1, got {checkpoint_every}")
        self.plan, self.data = plan, dataset
        self.checkpoint_every = checkpoint_every
        self.checkpointed = 0  # training batches done at the last checkpoint taken
        self.epochs, self.batch, self.frame_samples = epochs, batch, frame_samples
        self.in_flight, self.progress = in_flight, progress
        self.group = math.prod(plan.layers[-1].send_shape) // plan.net.num_classes
        self.batches = list(self._batches())
        self.train_batches = sum(1 for b in self.batches if b[0] == "train")
        needed = window_credit(batch, plan.net.training.eval_batch, frame_samples, in_flight)
        if needed > plan.window_credit:
            raise ValueError(
                f"window_credit: {in_flight} batches of {batch} samples in windows of "
                f"{frame_samples} need {needed} windows in the chip; the plan allows "
                f"{plan.window_credit} (emulator.chip.window_credit)"
            )
        self.next_batch = 0
        self.seq = 0
        self.samples = 0  # training samples fed so far
        self.pending: dict[int, _Pending] = {}  # by first seq
        self.losses: list[float] = []
        self.right = {"train": 0, "test": 0}
        self.done_batches = 0
        self.moments: dict[str, float] = {}  # first feed, training answered, all answered

    def _batches(self) -> Iterator[tuple[str, str, np.ndarray, tuple[int, int]]]:
        n = len(self.data.x_train)
        for epoch in range(self.epochs):
            order = stream(self.plan.seed, "order", epoch).permutation(n)
            for j, start in enumerate(range(0, n, self.batch)):
                yield "train", "train", order[start : start + self.batch], (epoch, j)
        for split, event in (("train", EVAL_EVENT_TRAIN), ("test", EVAL_EVENT_TEST)):
            m = len(self.data.x_train if split == "train" else self.data.x_test)
            size = self.plan.net.training.eval_batch
            for j, start in enumerate(range(0, m, size)):
                yield "eval", split, np.arange(start, min(start + size, m)), (event, j)

    def batch_sizes(self) -> list[int]:
        """Samples of every training batch, in order."""
        return [len(ids) for mode, _, ids, _ in self.batches if mode == "train"]

    @property
    def done(self) -> bool:
        """All batches fed and answered."""
        return self.next_batch == len(self.batches) and not self.pending

    def _boundary(self) -> bool:
        """Feeding waits here for a checkpoint."""
        b, every = self.next_batch, self.checkpoint_every
        return (
            every is not None
            and 0 < b <= self.train_batches
            and (b % every == 0 or b == self.train_batches)
            and b != self.checkpointed
        )

    @property
    def at_checkpoint(self) -> bool:
        """Every batch before a checkpoint boundary answered: the runtime may take it once
        the cores have settled (``settled(next_batch, samples)``)."""
        return self._boundary() and not self.pending

    def release(self) -> list[Frame]:
        """The checkpoint is taken: feed on."""
        self.checkpointed = self.next_batch
        return self.start()

    def start(self) -> list[Frame]:
        """Input frames of the next batches (the first ones, or after a checkpoint)."""
        self.moments.setdefault("fed", time.perf_counter())
        out: list[Frame] = []
        while (
            self.next_batch < len(self.batches)
            and len(self.pending) < self.in_flight
            and not self._boundary()
        ):
            out += self._feed()
        return out

    def state(self) -> dict[str, Any]:
        """Progress through the batches, with nothing pending."""
        if self.pending:
            raise RuntimeError("controller: a checkpoint needs every fed batch answered")
        return {
            "next_batch": self.next_batch,
            "seq": self.seq,
            "samples": self.samples,
            "losses": list(self.losses),
            "right": dict(self.right),
            "done_batches": self.done_batches,
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Go back to :meth:`state`; the next batch fed is the one after it."""
        self.next_batch, self.seq = int(state["next_batch"]), int(state["seq"])
        self.samples, self.done_batches = int(state["samples"]), int(state["done_batches"])
        self.losses = [float(x) for x in state["losses"]]
        self.right = {str(k): int(v) for k, v in state["right"].items()}
        self.pending = {}
        self.checkpointed = self.next_batch

    def _feed(self) -> list[Frame]:
        mode, split, ids, event = self.batches[self.next_batch]
        version = min(self.next_batch, self.train_batches)
        self.next_batch += 1
        data = self.data
        x = data.x_train if split == "train" else data.x_test
        y = data.y_train if split == "train" else data.y_test
        key = {"train": ("train", event[0]), "eval": ("train-eval",)}[mode]
        key = ("test",) if split == "test" else key
        spikes = network_inputs(
            self.plan.net,
            x[ids],
            temporal=bool(data.temporal),
            seed=self.plan.seed,
            key=key,
            sample_ids=ids,
        )
        spikes = pool_steps(
            spikes, [self.plan.net.layers[i] for i in pools_after(self.plan.net, -1)]
        )
        size = self.frame_samples or len(ids)
        base = self.samples if mode == "train" else -1
        self.samples += len(ids) if mode == "train" else 0
        pending = _Pending(size, ids, y[ids], event, version, f"{mode}:{split}", self.seq, base)
        pending.error_ps = [0] * len(ids)
        self.pending[self.seq] = pending
        layer0 = self.plan.layers[0]
        frames = []
        for first in range(0, len(ids), size):
            part = spikes[:, first : first + size]
            w = Window(
                seq=self.seq,
                mode=mode,
                version=version,
                event=event,
                first=first,
                size=part.shape[1],
                total=len(ids),
                base=base,
            )
            self.seq += 1
            head = Spikes(window=w)
            frames.append(Frame.pack(head, CONTROLLER, layer0.home, 0, version, part, 2))
        return frames

    def handle(self, frame: Frame) -> list[Frame]:
        """Output spikes of a window; when the batch is whole, its errors and the next batch."""
        if not isinstance(frame.header, Spikes):
            raise ValueError(f"controller: cannot handle a {frame.kind} frame")
        steps = self.plan.net.time_steps
        expect(frame, (steps, -1, *self.plan.layers[-1].send_shape), CONTROLLER)
        s, w = frame.array(), frame.window
        first_seq = w.seq - w.first // (self.frame_samples or w.total)
        pending = self.pending[first_seq]
        if pending.spikes is None:
            pending.spikes = np.zeros((steps, w.total, *s.shape[2:]))
        pending.spikes[:, w.first : w.first + w.size] = s
        if frame.header.error_ps is not None:
            pending.error_ps[w.first : w.first + w.size] = frame.header.error_ps
        pending.rows += w.size
        if pending.rows < w.total:
            return []
        del self.pending[first_seq]
        out = self._answer(pending) + self.start()
        if self.done_batches == self.train_batches:
            self.moments.setdefault("trained", time.perf_counter())
        if self.done:
            self.moments.setdefault("answered", time.perf_counter())
        return out

    def _answer(self, p: _Pending) -> list[Frame]:
        assert p.spikes is not None
        steps, total = p.spikes.shape[:2]
        rates = p.spikes.reshape(steps, total, -1).mean(axis=0)
        fr = rates.reshape(total, self.plan.net.num_classes, -1).mean(axis=2)
        if p.mode != "train:train":
            self.right[p.mode.split(":")[1]] += int(np.sum(fr.argmax(axis=1) == p.labels))
            return []
        kind = self.plan.net.training.loss
        e = output_error(fr, p.labels, self.group, kind)
        loss = loss_value(fr, p.labels, kind)
        self.losses.append(loss)
        self.done_batches += 1
        if self.progress is not None:
            self.progress(self.done_batches, self.train_batches, loss)
        frames = []
        last, fb = self.plan.layers[-1], self.plan.feedback
        for k, first in enumerate(range(0, total, p.window_size)):
            part = e[first : first + p.window_size]
            w = Window(
                seq=p.first_seq + k,
                mode="train",
                version=p.version,
                event=p.event,
                first=first,
                size=len(part),
                total=total,
                base=p.base,
            )
            frames.append(
                Frame.pack(Error(window=w), CONTROLLER, last.home, last.index, p.version, part)
            )
            if fb is not None:
                ready = p.error_ps[first : first + len(part)]
                group = len(self.plan.layers)
                head = Error(window=w, ready_ps=ready)
                frames.append(Frame.pack(head, CONTROLLER, fb.home, group, p.version, part))
        return frames

    def accuracy(self) -> dict[str, float]:
        """Train and test accuracy of the evaluation passes."""
        return {
            "train_accuracy": self.right["train"] / len(self.data.x_train),
            "test_accuracy": self.right["test"] / len(self.data.x_test),
        }


def assemble_weights(plan: Plan, reports: list[dict[str, Any]]) -> list[np.ndarray]:
    """Every layer's effective weights from the PE cores' reports, as ``ChipLayer.weights``."""
    shapes = [
        (layer.blocks[-1].in_stop, max(b.out_stop for b in layer.blocks)) for layer in plan.layers
    ]
    codes = [np.zeros(shape) for shape in shapes]
    for report in reports:
        if report.get("layer", -1) < 0:  # tiles and the feedback group hold no weights
            continue
        layer = plan.layers[report["layer"]]
        for j, eff in zip(report["blocks"], report["codes"], strict=True):
            b = layer.blocks[j]
            codes[layer.index][b.in_start : b.in_stop, b.out_start : b.out_stop] = eff
    return [c.T * layer.lsb for c, layer in zip(codes, plan.layers, strict=True)]


def run_sha(plan: Plan, reports: list[dict[str, Any]]) -> str:
    """The run's ``weights_sha256`` (the canonical order of :func:`weights_sha256`)."""
    return weights_sha256(assemble_weights(plan, reports))
