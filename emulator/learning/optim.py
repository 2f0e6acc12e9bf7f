"""The optimizers: SGD and Adam as PyTorch computes it (the SDFA authors' choice)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

OPTIMIZERS = ("adam", "sgd")


class Sgd:
    """Plain SGD: ``delta = -lr·g``."""

    name = "sgd"

    def __init__(self, lr: float) -> None:
        self.lr = lr

    def step(self, grads: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Weight deltas for one update."""
        return [-self.lr * g for g in grads]

    def state_dict(self) -> dict[str, Any]:
        """The optimizer's state."""
        return {"name": self.name, "lr": self.lr}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`'s output."""
        self.lr = state["lr"]


class Adam:
    """Adam (β = 0.9, 0.999, ε = 1e-8, bias-corrected), as PyTorch computes it."""

    name = "adam"

    def __init__(
        self, lr: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8
    ) -> None:
        self.lr, self.betas, self.eps = lr, betas, eps
        self.t = 0
        self.m: list[np.ndarray] = []
        self.v: list[np.ndarray] = []

    def step(self, grads: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Weight deltas ``-lr·m̂/(√v̂ + ε)`` for one update."""
        b1, b2 = self.betas
        if not self.m:
            self.m = [np.zeros_like(g) for g in grads]
            self.v = [np.zeros_like(g) for g in grads]
        self.t += 1
        c1, c2 = 1.0 - b1**self.t, 1.0 - b2**self.t
        deltas = []
        for m, v, g in zip(self.m, self.v, grads, strict=True):
            m *= b1
            m += (1.0 - b1) * g
            v *= b2
            v += (1.0 - b2) * g * g
            deltas.append(-self.lr * (m / c1) / (np.sqrt(v / c2) + self.eps))
        return deltas

    def state_dict(self) -> dict[str, Any]:
        """The optimizer's state (moments copied)."""
        return {
            "name": self.name,
            "lr": self.lr,
            "t": self.t,
            "m": [m.copy() for m in self.m],
            "v": [v.copy() for v in self.v],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`'s output."""
        self.lr, self.t = state["lr"], state["t"]
        self.m = [np.array(m, dtype=np.float64) for m in state["m"]]
        self.v = [np.array(v, dtype=np.float64) for v in state["v"]]


def make_optimizer(name: str, lr: float) -> Sgd | Adam:
    """One of :data:`OPTIMIZERS`."""
    if name == "adam":
        return Adam(lr)
    if name == "sgd":
        return Sgd(lr)
    raise ValueError(f"optimizer: {name!r} is not one of {', '.join(OPTIMIZERS)}")
