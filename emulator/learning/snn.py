"""Spiking neurons, the ATan surrogate, spike encoders and batched layer ops (numpy).

Neurons follow spikingjelly, which the SDFA authors' code uses (docs/algorithm.md#neurons): per step
``H[t] = V[t-1] + (X[t] - V[t-1]) / tau`` (LIF, decay_input) or ``H[t] = V[t-1] + X[t]`` (IF),
``S[t] = Θ(H[t] - θ)`` with ``Θ(0) = 1``, then a hard reset ``V[t] = H[t]·(1 - S[t])`` or a soft
one ``V[t] = H[t] - θ·S[t]``; ``V[-1] = 0``. Backward passes use the ATan surrogate
``σ'(x) = α / (2·(1 + (π/2·α·x)²))`` in place of ``Θ'`` and go through the reset too
(spikingjelly's ``detach_reset=False``). A *smooth* neuron fires ``σ(x)``, the surrogate's
primitive, so that its exact gradient is the surrogate gradient: tests check BPTT on it against
finite differences.

Arrays are batched: a neuron runs over ``(T, B, ...)``; conv inputs are ``(N, C, H, W)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np

from emulator.rng import stream
from emulator.spec import NeuronSpec, PoolLayer


class LayerBackend(Protocol):
    """Where a weighted layer's matrix W (n_out, n_in) lives: ideal floats or a crossbar model.

    ``event`` is a tuple of non-negative ints naming the operation (e.g. epoch, batch, step);
    ideal backends ignore it, noisy hardware backends key their noise by it.
    """

    def matmul(self, x: np.ndarray, event: tuple[int, ...]) -> np.ndarray:
        """Currents ``≈ x @ W.T`` (T, N, n_out) for spikes ``x`` (T, N, n_in): every time step
        of the layer in one call (the network is feed-forward)."""
        ...

    def weights(self) -> np.ndarray:
        """The effective W (n_out, n_in), float64."""
        ...

    def apply_update(self, delta: np.ndarray, event: tuple[int, ...]) -> None:
        """``W += delta`` (n_out, n_in), as well as the hardware can."""
        ...


# --------------------------------------------------------------------- surrogate


def atan_surrogate(x: np.ndarray, alpha: float) -> np.ndarray:
    """ATan surrogate derivative ``σ'(x) = α / (2·(1 + (π/2·α·x)²))``; ``σ'(0) = α/2``.
    Computed in place in one array (the same operations in the same order as the formula)."""
    y = np.asarray(np.multiply(x, np.pi / 2.0 * alpha))
    np.square(y, out=y)
    y += 1.0
    y *= 2.0
    return np.divide(alpha, y, out=y)[()]


def atan_spike(x: np.ndarray, alpha: float) -> np.ndarray:
    """The surrogate's primitive ``σ(x) = arctan(π/2·α·x)/π + 1/2``, a smooth step."""
    return np.arctan(np.pi / 2.0 * alpha * x) / np.pi + 0.5


# ------------------------------------------------------------------------ neuron


@dataclass(frozen=True)
class Neuron:
    """A LIF or IF neuron with hard (``zero``) or soft (``subtract``) reset.

    ``smooth`` replaces the Heaviside spike by ``atan_spike`` (for gradient checks only).
    """

    model: Literal["lif", "if"] = "lif"
    tau: float = 2.0
    threshold: float = 1.0
    reset: Literal["zero", "subtract"] = "zero"
    alpha: float = 2.0
    smooth: bool = False

    @classmethod
    def from_spec(cls, spec: NeuronSpec, *, smooth: bool = False) -> Neuron:
        """The neuron a network file describes."""
        return cls(spec.model, spec.tau, spec.threshold, spec.reset, spec.surrogate_alpha, smooth)

    @property
    def input_gain(self) -> float:
        """``∂H[t]/∂X[t]``: 1/τ for LIF, 1 for IF."""
        return 1.0 / self.tau if self.model == "lif" else 1.0

    @property
    def decay(self) -> float:
        """``∂H[t]/∂V[t-1]``: 1 - 1/τ for LIF, 1 for IF."""
        return 1.0 - 1.0 / self.tau if self.model == "lif" else 1.0

    def step(self, v: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One step from potential ``v`` and input current ``x``: returns (H, S, V)."""
        h = self.decay * v + self.input_gain * x
        s = self.fire(h)
        v_next = h * (1.0 - s) if self.reset == "zero" else h - self.threshold * s
        return h, s, v_next

    def fire(self, h: np.ndarray) -> np.ndarray:
        """Spikes from membrane potentials: ``Θ(H - θ)`` (or ``σ(H - θ)`` when smooth)."""
        if self.smooth:
            return atan_spike(h - self.threshold, self.alpha)
        return (h >= self.threshold).astype(np.float64)

    def surrogate(self, h: np.ndarray) -> np.ndarray:
        """``σ'(H - θ)``, the surrogate of ``∂S/∂H``."""
        return atan_surrogate(h - self.threshold, self.alpha)

    def run(self, currents: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Run over time from ``V[-1] = 0``: currents (T, ...) → (H, S), each (T, ...)."""
        h = np.empty(currents.shape, dtype=np.float64)
        s = np.empty(currents.shape, dtype=np.float64)
        v = np.zeros(currents.shape[1:], dtype=np.float64)
        for t in range(currents.shape[0]):
            h[t], s[t], v = self.step(v, currents[t])
        return h, s

    def backward(self, h: np.ndarray, s: np.ndarray, grad_s: np.ndarray) -> np.ndarray:
        """Back-propagate ``∂L/∂S[t]`` through the membrane recurrence to ``∂L/∂X[t]``.

        ``h``, ``s`` are the forward's (T, ...) arrays; ``grad_s`` is the loss gradient with
        respect to each step's spikes (a direct dependence, not through later steps).
        """
        sg = self.surrogate(h)
        # ∂V/∂H: V = H·(1 - S(H)) for reset to zero, V = H - θ·S(H) for subtract.
        dv_dh = (1.0 - s) - h * sg if self.reset == "zero" else 1.0 - self.threshold * sg
        grad_x = np.empty_like(sg)
        grad_v = np.zeros(h.shape[1:], dtype=np.float64)  # ∂L/∂V[t] through H[t+1]
        for t in range(h.shape[0] - 1, -1, -1):
            grad_h = grad_s[t] * sg[t] + grad_v * dv_dh[t]
            grad_x[t] = grad_h * self.input_gain
            grad_v = grad_h * self.decay
        return grad_x


# ---------------------------------------------------------------------- encoders


def rate_encode(
    x: np.ndarray,
    time_steps: int,
    seed: int,
    key: Sequence[int | str],
    sample_ids: Sequence[int] | np.ndarray | None = None,
) -> np.ndarray:
    """Bernoulli spikes with ``p = x`` (values in [0, 1]): x (B, ...) → uint8 (T, B, ...).

    Sample ``i`` draws from ``stream(seed, "encode", *key, sample_ids[i])`` alone, so its
    spikes do not depend on which samples share its batch; pass global sample ids
    (default ``0..B-1``).
    """
    x = np.asarray(x, dtype=np.float64)
    ids = np.arange(len(x)) if sample_ids is None else np.asarray(sample_ids)
    if ids.shape != (len(x),):
        raise ValueError(f"sample_ids: expected {len(x)} ids, got shape {ids.shape}")
    out = np.empty((time_steps, *x.shape), dtype=np.uint8)
    for i, sample in enumerate(ids):
        draws = stream(seed, "encode", *key, int(sample)).random((time_steps, *x.shape[1:]))
        out[:, i] = draws < x[i]
    return out


def events_to_steps(x: np.ndarray) -> np.ndarray:
    """Event frames (B, T, ...) binary → time-major uint8 (T, B, ...)."""
    return np.ascontiguousarray(np.swapaxes(np.asarray(x), 0, 1), dtype=np.uint8)


# -------------------------------------------------------------------- layer ops


def fc(x: np.ndarray, backend: LayerBackend, event: tuple[int, ...]) -> np.ndarray:
    """Fully connected currents of every step: x (T, B, ...) flattened → (T, B, n_out)."""
    return backend.matmul(x.reshape(*x.shape[:2], -1), event)


def conv_output_size(size: int, kernel: int, stride: int, padding: int) -> int:
    """Output length of a convolution along one axis."""
    return (size + 2 * padding - kernel) // stride + 1


def im2col(x: np.ndarray, kernel: int, stride: int = 1, padding: int = 0) -> np.ndarray:
    """Patches of x (N, C, H, W): (N·H'·W', C·K·K), rows in (n, i, j) order, columns (c, kh, kw)."""
    n, c, h, w = x.shape
    ho = conv_output_size(h, kernel, stride, padding)
    wo = conv_output_size(w, kernel, stride, padding)
    # Channels last first: the patches' copy then reads (c, kh, kw) runs far less scattered.
    pad = (padding, padding)
    padded = np.pad(x.transpose(0, 2, 3, 1), ((0, 0), pad, pad, (0, 0)))
    win = np.lib.stride_tricks.sliding_window_view(padded, (kernel, kernel), axis=(1, 2))
    win = win[:, : (ho - 1) * stride + 1 : stride, : (wo - 1) * stride + 1 : stride]
    return win.reshape(n * ho * wo, c * kernel * kernel)


def col2im(
    cols: np.ndarray, shape: tuple[int, ...], kernel: int, stride: int = 1, padding: int = 0
) -> np.ndarray:
    """Adjoint of :func:`im2col`: sum patch values back into an (N, C, H, W) array."""
    n, c, h, w = shape
    ho = conv_output_size(h, kernel, stride, padding)
    wo = conv_output_size(w, kernel, stride, padding)
    patches = cols.reshape(n, ho, wo, c, kernel, kernel).transpose(0, 3, 4, 5, 1, 2)
    out = np.zeros((n, c, h + 2 * padding, w + 2 * padding), dtype=cols.dtype)
    for kh in range(kernel):
        for kw in range(kernel):
            rows = slice(kh, kh + (ho - 1) * stride + 1, stride)
            columns = slice(kw, kw + (wo - 1) * stride + 1, stride)
            out[:, :, rows, columns] += patches[:, :, kh, kw]
    return out[:, :, padding : padding + h, padding : padding + w]


def conv2d(
    x: np.ndarray,
    backend: LayerBackend,
    kernel: int,
    stride: int,
    padding: int,
    event: tuple[int, ...],
) -> np.ndarray:
    """Convolution currents of every step through the backend's im2col matrix W (OC, C·K·K):
    x (T, N, C, H, W) → (T, N, OC, H', W')."""
    steps, n, _, h, w = x.shape
    ho = conv_output_size(h, kernel, stride, padding)
    wo = conv_output_size(w, kernel, stride, padding)
    rows = im2col(x.reshape(steps * n, *x.shape[2:]), kernel, stride, padding)
    out = backend.matmul(rows.reshape(steps, n * ho * wo, -1), event)
    return out.reshape(steps, n, ho, wo, -1).transpose(0, 1, 4, 2, 3)


def _windows(x: np.ndarray, kernel: int) -> np.ndarray:
    """Non-overlapping windows of x (N, C, H, W): (N, C, H//k, W//k, k·k); the rest is cropped."""
    n, c, h, w = x.shape
    ho, wo = h // kernel, w // kernel
    x = x[:, :, : ho * kernel, : wo * kernel].reshape(n, c, ho, kernel, wo, kernel)
    return x.transpose(0, 1, 2, 4, 3, 5).reshape(n, c, ho, wo, kernel * kernel)


def _unwindows(win: np.ndarray, shape: tuple[int, ...], kernel: int) -> np.ndarray:
    """Inverse of :func:`_windows`, zeros where the forward cropped."""
    n, c, ho, wo, _ = win.shape
    out = np.zeros(shape, dtype=win.dtype)
    blocks = win.reshape(n, c, ho, wo, kernel, kernel).transpose(0, 1, 2, 4, 3, 5)
    out[:, :, : ho * kernel, : wo * kernel] = blocks.reshape(n, c, ho * kernel, wo * kernel)
    return out


def _offsets(x: np.ndarray, kernel: int) -> list[np.ndarray]:
    """Position (i, j) of every window of x (N, C, H, W), as k·k strided views (N, C, H//k,
    W//k) in window order; the rest is cropped. No copy, unlike :func:`_windows`."""
    h, w = x.shape[2] // kernel * kernel, x.shape[3] // kernel * kernel  # cropped
    return [x[:, :, i:h:kernel, j:w:kernel] for i in range(kernel) for j in range(kernel)]


def pool(x: np.ndarray, mode: str, kernel: int) -> np.ndarray:
    """Max (OR of spikes) or average pooling, window = stride = ``kernel``: (N, C, H, W)."""
    if mode != "max":
        return _windows(x, kernel).mean(axis=-1)
    first, *rest = _offsets(x, kernel)
    out = first.copy()
    for view in rest:
        np.maximum(out, view, out=out)
    return out


def pool_steps(x: np.ndarray, layers: Sequence[PoolLayer]) -> np.ndarray:
    """``layers`` (pool layer specs, in order) applied to every step of x (T, B, C, H, W)."""
    steps, batch = x.shape[:2]
    for layer in layers:
        flat = pool(x.reshape(steps * batch, *x.shape[2:]), layer.mode, layer.kernel)
        x = flat.reshape(steps, batch, *flat.shape[1:])
    return x


def pool_backward(x: np.ndarray, grad_out: np.ndarray, mode: str, kernel: int) -> np.ndarray:
    """Gradient of :func:`pool` w.r.t. its input ``x``; max routes to the first argmax."""
    if mode != "max":
        grad = np.repeat(grad_out[..., None] / kernel**2, kernel**2, axis=-1)
        return _unwindows(grad, x.shape, kernel)
    views = _offsets(x, kernel)
    best, winner = views[0].copy(), np.zeros(views[0].shape, dtype=np.uint16)
    for k, view in enumerate(views[1:], start=1):
        np.copyto(winner, k, where=view > best)  # strictly greater: the first max wins
        np.maximum(best, view, out=best)
    grad = np.zeros(x.shape, dtype=np.float64)
    for k, target in enumerate(_offsets(grad, kernel)):
        np.copyto(target, grad_out, where=winner == k)
    return grad
