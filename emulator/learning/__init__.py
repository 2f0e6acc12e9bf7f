"""The reference trainer: SDFA, SDFA with local BPTT, and BPTT on a single-process numpy model.

This is the oracle the rest of the emulator is tested against (DESIGN.md §5). Every weighted
layer (fc or conv, each followed by a spiking neuron) keeps its matrix W in a
:class:`LayerBackend` (ideal floats here, a crossbar model elsewhere): W is (n_out, n_in) for
fc and the im2col matrix (OC, IC·K·K) for conv, columns ordered channel, then kernel row, then
kernel column. Layers are numbered by their position among the weighted layers (pool layers
do not count): that index keys the init stream, the backend list and the feedback slices.

The algorithms (DESIGN.md §2), with ``e = ∂loss/∂(output rates)`` of shape (B, C_out):

- ``bptt``: surrogate-gradient back-propagation through all layers and time steps, through
  the reset too.
- ``sdfa`` (hardware form): a hidden layer l gets ``g_l = e·B[:, :n_l]/√M`` from one fixed
  random matrix B, the same at every step; ``δ_l[t] = g_l ⊙ σ'(H_l[t] - θ)``,
  ``ΔW_l = Σ_t δ_l[t]ᵀ·s_{l-1}[t]`` summed over the batch. As in the design's formula there
  is no ``∂H/∂X`` (1/τ) factor and no recurrence. The output layer uses the same rule with its
  true spike gradient ``e/T``. A layer followed by pool layers gets its feedback after them
  (the authors' ConvBlock: conv → neuron → max-pool → DFA): n_l is the pooled size, and g
  reaches each max-pool window's winner at each step only (:func:`spike_error`).
- ``sdfa-local-bptt`` (the authors' software form): ``∂loss/∂s_l[t] := g_l`` (``e/T`` for the
  output layer), back-propagated through the layer's own membrane recurrence only.

In no SDFA form does anything propagate from layer l to layer l-1.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from emulator.learning.snn import (
    LayerBackend,
    Neuron,
    col2im,
    conv2d,
    events_to_steps,
    fc,
    im2col,
    pool,
    pool_backward,
    rate_encode,
)
from emulator.rng import stream
from emulator.spec import (
    ConvLayer,
    FcLayer,
    NetworkSpec,
    PoolLayer,
    feedback_widths,
    layer_shapes,
)

__all__ = [
    "ALGORITHMS",
    "EVAL_BATCH",
    "EVAL_EVENT_TEST",
    "EVAL_EVENT_TRAIN",
    "INIT_GAIN",
    "OPTIMIZERS",
    "Adam",
    "FeedbackBackend",
    "IdealFeedback",
    "IdealLayer",
    "LayerBackend",
    "ReferenceModel",
    "Sgd",
    "Trace",
    "TrainingData",
    "accuracy",
    "feedback_matrix",
    "feedback_widths",
    "init_weights",
    "local_gradient",
    "make_optimizer",
    "mse_loss",
    "network_inputs",
    "output_error",
    "spike_error",
    "train",
    "weight_gradient",
    "weight_shapes",
    "weighted_layers",
    "weights_sha256",
]

ALGORITHMS = ("sdfa", "sdfa-local-bptt", "bptt")
OPTIMIZERS = ("adam", "sgd")

INIT_GAIN = 4.0
"""Gain on PyTorch's default init (uniform ±1/√fan_in) so that an untrained network spikes.

Measured on digits (64 features in [0, 1], mean 0.31, rate-coded, T = 8, 512 samples) with the
64-128-10 LIF net (τ = 2, θ = 1), mean over init seeds 0-4: hidden firing rate 0.10 (0.09-0.12
by seed; gain 3: 0.06, gain 5: 0.15, gain 1: 0.00), output firing rate 0.02. Gains 3 and 5
trained no better on digits.
"""

EVAL_BATCH = 256
"""Samples per forward pass when measuring accuracy (fixed, so eval events are too)."""

EVAL_EVENT_TEST = 1_000_000
EVAL_EVENT_TRAIN = 1_000_001
"""First element of the events of accuracy passes: (EVAL_EVENT_*, eval batch index)."""


class FeedbackBackend(Protocol):
    """Where SDFA's fixed random feedback matrix lives (ideal floats or never-programmed cells)."""

    def project(self, e: np.ndarray, layer: int, event: tuple[int, ...]) -> np.ndarray:
        """Project the output error e (B, C_out) to hidden layer ``layer``'s g (B, n_l)."""
        ...


class IdealLayer:
    """A weighted layer's matrix as exact float64 (no device effects)."""

    def __init__(self, w: np.ndarray) -> None:
        self._w = np.array(w, dtype=np.float64)

    def matmul(self, x: np.ndarray, event: tuple[int, ...]) -> np.ndarray:
        """``x @ W.T``."""
        return np.asarray(x, dtype=np.float64) @ self._w.T

    def weights(self) -> np.ndarray:
        """W (read-only view; later updates do not change it)."""
        view = self._w.view()
        view.flags.writeable = False
        return view

    def apply_update(self, delta: np.ndarray, event: tuple[int, ...]) -> None:
        """``W += delta``, into a new array so earlier :meth:`weights` stay as they were."""
        self._w = self._w + delta

    def set_weights(self, w: np.ndarray) -> None:
        """Replace W (for loading a checkpoint)."""
        if np.shape(w) != self._w.shape:
            raise ValueError(f"weights: expected shape {self._w.shape}, got {np.shape(w)}")
        self._w = np.array(w, dtype=np.float64)


class IdealFeedback:
    """SDFA's feedback in floats: one matrix B (C_out, M); layer l uses ``B[:, :n_l]/√M``."""

    def __init__(self, matrix: np.ndarray, widths: Sequence[int]) -> None:
        self.matrix = np.asarray(matrix, dtype=np.float64)
        self.widths = list(widths)
        if self.widths and max(self.widths) > self.matrix.shape[1]:
            raise ValueError(
                f"widths: layer width {max(self.widths)} exceeds the matrix's "
                f"{self.matrix.shape[1]} columns"
            )

    @classmethod
    def for_network(cls, net: NetworkSpec, seed: int) -> IdealFeedback:
        """The feedback of ``net`` drawn from ``stream(seed, "feedback")``."""
        widths = feedback_widths(net)
        outputs = math.prod(layer_shapes(net)[-1])
        return cls(feedback_matrix(seed, outputs, max(widths, default=0)), widths)

    def project(self, e: np.ndarray, layer: int, event: tuple[int, ...]) -> np.ndarray:
        """``g_l = e·B[:, :n_l]/√M`` for hidden weighted layer ``layer``."""
        n = self.widths[layer]
        return e @ self.matrix[:, :n] / math.sqrt(self.matrix.shape[1])


# ------------------------------------------------------------------- network shape


def weighted_layers(net: NetworkSpec) -> list[int]:
    """Indices into ``net.layers`` of the weighted (fc, conv) layers, in order."""
    return [i for i, layer in enumerate(net.layers) if not isinstance(layer, PoolLayer)]


def weight_shapes(net: NetworkSpec) -> list[tuple[int, int]]:
    """Shape of each weighted layer's matrix: (n_out, n_in) for fc, (OC, IC·K·K) for conv."""
    shapes = layer_shapes(net)
    out = []
    for i in weighted_layers(net):
        layer, shape_in = net.layers[i], shapes[i]
        if isinstance(layer, ConvLayer):
            out.append((layer.out_channels, shape_in[0] * layer.kernel**2))
        else:
            out.append((math.prod(shapes[i + 1]), math.prod(shape_in)))
    return out


def feedback_matrix(seed: int, outputs: int, width: int) -> np.ndarray:
    """SDFA's fixed matrix B (outputs, width), N(0, 1) entries from ``stream(seed, "feedback")``."""
    return stream(seed, "feedback").standard_normal((outputs, width))


def init_weights(net: NetworkSpec, seed: int, *, gain: float = INIT_GAIN) -> list[np.ndarray]:
    """Initial W per weighted layer l: ``gain`` × U(±1/√fan_in) from ``stream(seed, "init", l)``."""
    weights = []
    for index, shape in enumerate(weight_shapes(net)):
        bound = gain / math.sqrt(shape[1])
        weights.append(stream(seed, "init", index).uniform(-bound, bound, shape))
    return weights


# ---------------------------------------------------------------------- optimizers


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


# --------------------------------------------------------------------------- model


@dataclass(frozen=True)
class Trace:
    """What a forward pass recorded, per entry of ``net.layers``, each (T, B, *shape).

    ``x[i]`` is layer i's input spikes, ``h[i]`` its membrane potentials before reset (None for
    a pool layer), ``s[i]`` its output spikes. ``rates`` (B, C_out) are the last layer's firing
    rates; ``fr`` (B, num_classes) the class rates after voting.
    """

    x: list[np.ndarray]
    h: list[np.ndarray | None]
    s: list[np.ndarray]
    rates: np.ndarray
    fr: np.ndarray


def mse_loss(fr: np.ndarray, y: np.ndarray) -> float:
    """``mean((fr - one_hot(y))²)`` over batch and classes."""
    return float(np.mean((fr - _one_hot(y, fr.shape[1])) ** 2))


def _one_hot(y: np.ndarray, classes: int) -> np.ndarray:
    return np.eye(classes)[np.asarray(y)]


class ReferenceModel:
    """A network, its weights (in backends), its algorithm and its optimizer.

    ``layer_backends`` (one per weighted layer) default to :class:`IdealLayer` holding
    :func:`init_weights`; ``feedback`` defaults to :meth:`IdealFeedback.for_network`.
    ``lr`` and ``optimizer`` default to ``net.training``. ``smooth`` makes neurons fire
    ``σ(H - θ)`` instead of spikes (gradient checks only).
    """

    def __init__(
        self,
        net: NetworkSpec,
        *,
        algorithm: str,
        seed: int,
        lr: float | None = None,
        optimizer: str | None = None,
        layer_backends: Sequence[LayerBackend] | None = None,
        feedback: FeedbackBackend | None = None,
        smooth: bool = False,
        init_gain: float = INIT_GAIN,
    ) -> None:
        if algorithm not in ALGORITHMS:
            raise ValueError(f"algorithm: {algorithm!r} is not one of {', '.join(ALGORITHMS)}")
        self.net, self.algorithm, self.seed = net, algorithm, seed
        self.neuron = Neuron.from_spec(net.neuron, smooth=smooth)
        self.shapes = layer_shapes(net)
        self.weighted = weighted_layers(net)
        self._index = {layer: index for index, layer in enumerate(self.weighted)}
        if layer_backends is None:
            layer_backends = [IdealLayer(w) for w in init_weights(net, seed, gain=init_gain)]
        self.backends = list(layer_backends)
        expected = weight_shapes(net)
        got = [b.weights().shape for b in self.backends]
        if got != expected:
            raise ValueError(
                f"layer_backends: weight shapes {got} do not match the network's {expected}"
            )
        self.feedback = feedback if feedback is not None else IdealFeedback.for_network(net, seed)
        self.optimizer = make_optimizer(
            optimizer or net.training.optimizer, net.training.lr if lr is None else lr
        )

    # ---------------------------------------------------------------- forward

    def forward(self, x: np.ndarray, event: tuple[int, ...] = ()) -> Trace:
        """Run spikes x (T, B, *input_shape); layer l's matmul at step t gets ``(*event, t)``."""
        x = np.asarray(x, dtype=np.float64)
        expected = (self.net.time_steps, *self.net.input_shape)
        if x.ndim != len(expected) + 1 or (x.shape[0], *x.shape[2:]) != expected:
            raise ValueError(f"x: expected shape (T, B, *input_shape) = {expected}, got {x.shape}")
        steps, batch = x.shape[:2]
        xs: list[np.ndarray] = []
        hs: list[np.ndarray | None] = []
        ss: list[np.ndarray] = []
        a = x
        for i, layer in enumerate(self.net.layers):
            xs.append(a)
            if isinstance(layer, PoolLayer):
                out = pool(a.reshape(steps * batch, *a.shape[2:]), layer.mode, layer.kernel)
                hs.append(None)
            else:
                backend = self.backends[self._index[i]]
                currents = [_currents(layer, backend, a[t], (*event, t)) for t in range(steps)]
                h, out = self.neuron.run(np.stack(currents))
                hs.append(h)
            a = out.reshape(steps, batch, *self.shapes[i + 1])
            ss.append(a)
        rates = a.reshape(steps, batch, -1).mean(axis=0)
        fr = rates.reshape(batch, self.net.num_classes, -1).mean(axis=2)
        return Trace(xs, hs, ss, rates, fr)

    def loss(self, fr: np.ndarray, y: np.ndarray) -> float:
        """MSE between class rates and one-hot labels."""
        return mse_loss(fr, y)

    def predict(self, x: np.ndarray, event: tuple[int, ...] = ()) -> np.ndarray:
        """Class with the highest rate (the first on ties)."""
        return self.forward(x, event).fr.argmax(axis=1)

    def output_error(self, fr: np.ndarray, y: np.ndarray) -> np.ndarray:
        """``e = ∂loss/∂rates`` (B, C_out): each output gets its class's gradient / group size."""
        return output_error(fr, y, math.prod(self.shapes[-1]) // fr.shape[1])

    # -------------------------------------------------------------- gradients

    def gradients(
        self, x: np.ndarray, y: np.ndarray, event: tuple[int, ...] = ()
    ) -> list[np.ndarray]:
        """``∂loss/∂W`` per weighted layer under the model's algorithm (to be descended)."""
        return self._gradients(self.forward(x, event), y, event)

    def _gradients(self, trace: Trace, y: np.ndarray, event: tuple[int, ...]) -> list[np.ndarray]:
        e = self.output_error(trace.fr, y)
        if self.algorithm == "bptt":
            return self._bptt(trace, e)
        steps = trace.x[0].shape[0]
        last = self.weighted[-1]
        grads = []
        for index, i in enumerate(self.weighted):
            h = trace.h[i]
            assert h is not None
            g = e / steps if i == last else self.feedback.project(e, index, event)
            grad_s = spike_error(self.net, i, trace.s[i], g)
            grads.append(
                local_gradient(
                    self.net.layers[i],
                    self.neuron,
                    self.algorithm,
                    h,
                    trace.s[i],
                    trace.x[i],
                    grad_s,
                )
            )
        return grads

    def _bptt(self, trace: Trace, e: np.ndarray) -> list[np.ndarray]:
        steps, batch = trace.x[0].shape[:2]
        grads: list[np.ndarray] = [np.empty(0)] * len(self.weighted)
        grad_s = np.broadcast_to((e / steps).reshape(1, batch, -1), trace.s[-1].shape)
        for i in range(len(self.net.layers) - 1, -1, -1):
            layer, inputs = self.net.layers[i], trace.x[i]
            flat = (steps * batch, *inputs.shape[2:])
            if isinstance(layer, PoolLayer):
                grad_out = grad_s.reshape(steps * batch, *grad_s.shape[2:])
                grad_in = pool_backward(inputs.reshape(flat), grad_out, layer.mode, layer.kernel)
            else:
                h = trace.h[i]
                assert h is not None
                grad_x = self.neuron.backward(h, trace.s[i], grad_s)
                grads[self._index[i]] = weight_gradient(layer, grad_x, inputs)
                if i == 0:
                    break
                grad_in = self._input_gradient(i, grad_x, flat)
            grad_s = grad_in.reshape(inputs.shape)
        return grads

    def _input_gradient(
        self, i: int, grad_x: np.ndarray, flat_shape: tuple[int, ...]
    ) -> np.ndarray:
        """``∂loss/∂input`` through ``W``ᵀ: (T·B, *in_shape)."""
        layer, w = self.net.layers[i], self.backends[self._index[i]].weights()
        if isinstance(layer, ConvLayer):
            cols = _conv_rows(grad_x) @ w
            return col2im(cols, flat_shape, layer.kernel, layer.stride, layer.padding)
        return (grad_x.reshape(flat_shape[0], -1) @ w).reshape(flat_shape)

    # --------------------------------------------------------------- training

    def train_batch(self, x: np.ndarray, y: np.ndarray, event: tuple[int, ...] = ()) -> float:
        """One update: gradients → optimizer → each backend's ``apply_update``; the batch loss."""
        trace = self.forward(x, event)
        deltas = self.optimizer.step(self._gradients(trace, y, event))
        for backend, delta in zip(self.backends, deltas, strict=True):
            backend.apply_update(delta, event)
        return mse_loss(trace.fr, y)

    def weights(self) -> list[np.ndarray]:
        """Effective W per weighted layer."""
        return [b.weights() for b in self.backends]

    def state_dict(self) -> dict[str, Any]:
        """Weights and optimizer state (copies)."""
        return {
            "weights": [np.array(w) for w in self.weights()],
            "optimizer": self.optimizer.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`'s output; backends must offer ``set_weights``."""
        if state["optimizer"]["name"] != self.optimizer.name:
            raise ValueError(
                f"optimizer: checkpoint has {state['optimizer']['name']!r}, "
                f"model has {self.optimizer.name!r}"
            )
        for backend, w in zip(self.backends, state["weights"], strict=True):
            if not hasattr(backend, "set_weights"):
                raise TypeError(f"{type(backend).__name__} cannot load weights (no set_weights)")
            backend.set_weights(w)
        self.optimizer.load_state_dict(state["optimizer"])


def output_error(fr: np.ndarray, y: np.ndarray, group: int) -> np.ndarray:
    """``e = ∂loss/∂rates`` (B, C·group) of the MSE loss on class rates ``fr`` (B, C): each
    output neuron gets its class's gradient divided by the voting group size."""
    batch, classes = fr.shape
    e = 2.0 * (fr - _one_hot(y, classes)) / (batch * classes)
    return np.repeat(e / group, group, axis=1)


def spike_error(net: NetworkSpec, index: int, s: np.ndarray, g: np.ndarray) -> np.ndarray:
    """``∂loss/∂s[t]`` (T, B, *out shape) of the weighted layer ``net.layers[index]`` whose
    spikes are ``s``, from an error ``g`` (B, …) that is the same at every step, given after
    the pool layers that follow it (DESIGN.md §2; the authors' ConvBlock). Without a pool: g
    at every step. Through a max pool: each window's error goes to that step's winner (the
    first position holding the window's max: its first spike, or its first position when
    none fired, PyTorch's rule), so the route changes with t; an avg pool spreads it evenly.
    """
    steps, batch = s.shape[:2]
    pools = []
    j = index + 1
    while j < len(net.layers) and isinstance(net.layers[j], PoolLayer):
        pools.append(net.layers[j])
        j += 1
    sent = layer_shapes(net)[j]
    grad = np.broadcast_to(np.reshape(g, (1, batch, *sent)), (steps, batch, *sent))
    if not pools:
        return grad
    inputs = [s.reshape(steps * batch, *s.shape[2:])]
    for layer in pools[:-1]:
        inputs.append(pool(inputs[-1], layer.mode, layer.kernel))
    flat = grad.reshape(steps * batch, *sent)
    for layer, x in zip(reversed(pools), reversed(inputs), strict=True):
        flat = pool_backward(x, flat, layer.mode, layer.kernel)
    return flat.reshape(s.shape)


def local_gradient(
    layer: FcLayer | ConvLayer,
    neuron: Neuron,
    algorithm: str,
    h: np.ndarray,
    s: np.ndarray,
    inputs: np.ndarray,
    grad_s: np.ndarray,
) -> np.ndarray:
    """A layer's weight gradient from the error of its own spikes ``grad_s`` (T, B, *out
    shape; :func:`spike_error`): ``sdfa`` through the surrogate only, ``sdfa-local-bptt``
    through the layer's own membrane recurrence. ``h``, ``s`` (T, B, *out shape) and
    ``inputs`` (T, B, *in shape) are the forward's. This is the whole of SDFA's per-layer
    learning rule."""
    if algorithm != "sdfa":
        return weight_gradient(layer, neuron.backward(h, s, grad_s), inputs)
    return weight_gradient(layer, grad_s * neuron.surrogate(h), inputs)


def weight_gradient(
    layer: FcLayer | ConvLayer, grad_x: np.ndarray, inputs: np.ndarray
) -> np.ndarray:
    """``Σ_{t,b} grad_x ⊗ input`` (for conv: over positions too, against im2col patches)."""
    rows = grad_x.shape[0] * grad_x.shape[1]
    if isinstance(layer, ConvLayer):
        patches = im2col(
            inputs.reshape(rows, *inputs.shape[2:]), layer.kernel, layer.stride, layer.padding
        )
        return _conv_rows(grad_x).T @ patches
    return grad_x.reshape(rows, -1).T @ inputs.reshape(rows, -1)


def _currents(
    layer: FcLayer | ConvLayer, backend: LayerBackend, a: np.ndarray, event: tuple[int, ...]
) -> np.ndarray:
    if isinstance(layer, ConvLayer):
        return conv2d(a, backend, layer.kernel, layer.stride, layer.padding, event)
    return fc(a, backend, event)


def _conv_rows(grad: np.ndarray) -> np.ndarray:
    """(T, B, OC, H, W) → (T·B·H·W, OC), rows in im2col order."""
    channels = grad.shape[2]
    return np.moveaxis(grad.reshape(-1, *grad.shape[2:]), 1, -1).reshape(-1, channels)


def weights_sha256(weights: Sequence[np.ndarray]) -> str:
    """SHA-256 hex of each matrix in order as float64 little-endian C-order bytes."""
    digest = hashlib.sha256()
    for w in weights:
        digest.update(np.ascontiguousarray(w, dtype="<f8").tobytes())
    return digest.hexdigest()


# ------------------------------------------------------------------------- driver


class TrainingData(Protocol):
    """What :func:`train` needs of a dataset (``emulator.data.datasets.Dataset`` has it)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    temporal: bool
    num_classes: int


def network_inputs(
    net: NetworkSpec,
    x: np.ndarray,
    *,
    temporal: bool,
    seed: int,
    key: Sequence[int | str],
    sample_ids: np.ndarray,
) -> np.ndarray:
    """Samples → spikes (T, B, *input_shape): event frames transposed, static values rate-coded."""
    shape = tuple(net.input_shape)
    if temporal:
        return events_to_steps(x).reshape(x.shape[1], len(x), *shape)
    return rate_encode(x.reshape(len(x), *shape), net.time_steps, seed, key, sample_ids)


def accuracy(
    model: ReferenceModel,
    x: np.ndarray,
    y: np.ndarray,
    *,
    temporal: bool,
    seed: int,
    key: Sequence[int | str],
    event: int,
) -> float:
    """Fraction of samples predicted right, in batches of :data:`EVAL_BATCH`.

    Sample i is encoded with ``key`` and id i; eval batch j runs with event ``(event, j)``.
    """
    right = 0
    for j, start in enumerate(range(0, len(x), EVAL_BATCH)):
        ids = np.arange(start, min(start + EVAL_BATCH, len(x)))
        spikes = network_inputs(
            model.net, x[ids], temporal=temporal, seed=seed, key=key, sample_ids=ids
        )
        right += int(np.sum(model.predict(spikes, (event, j)) == y[ids]))
    return right / len(x)


def train(
    net: NetworkSpec,
    dataset: TrainingData,
    *,
    algorithm: str,
    seed: int,
    epochs: int | None = None,
    batch: int | None = None,
    lr: float | None = None,
    optimizer: str | None = None,
    model: ReferenceModel | None = None,
    progress: Callable[[int, int, float], None] | None = None,
    eval_each_epoch: bool = False,
) -> dict[str, Any]:
    """Train ``net`` on ``dataset`` and measure train and test accuracy at the end.

    Epoch k visits samples in ``stream(seed, "order", k).permutation(N)`` order, in batches of
    ``batch`` (the last may be smaller); static samples are rate-coded with key ``("train", k)``
    and their global ids; batch j's update is event ``(k, j)``. Unset ``epochs``, ``batch``,
    ``lr``, ``optimizer`` come from ``net.training``. A given ``model`` (e.g. crossbar-backed)
    is trained in place; ``algorithm``, ``lr`` and ``optimizer`` must then agree with it.
    ``progress(done_batches, total_batches, loss)`` runs after every batch;
    ``eval_each_epoch`` adds the test accuracy to each epoch's history entry.
    """
    epochs = net.training.epochs if epochs is None else epochs
    batch = net.training.batch if batch is None else batch
    if model is None:
        model = ReferenceModel(net, algorithm=algorithm, seed=seed, lr=lr, optimizer=optimizer)
    else:
        _check_model(model, algorithm, lr, optimizer)
    n = len(dataset.x_train)
    per_epoch = math.ceil(n / batch)
    temporal = bool(dataset.temporal)
    history = []
    for epoch in range(epochs):
        start_time = time.perf_counter()
        order = stream(seed, "order", epoch).permutation(n)
        total = 0.0
        for j, start in enumerate(range(0, n, batch)):
            ids = order[start : start + batch]
            spikes = network_inputs(
                net,
                dataset.x_train[ids],
                temporal=temporal,
                seed=seed,
                key=("train", epoch),
                sample_ids=ids,
            )
            loss = model.train_batch(spikes, dataset.y_train[ids], (epoch, j))
            total += loss * len(ids)
            if progress is not None:
                progress(epoch * per_epoch + j + 1, epochs * per_epoch, loss)
        entry: dict[str, Any] = {
            "epoch": epoch,
            "loss": total / n,
            "seconds": time.perf_counter() - start_time,
        }
        if eval_each_epoch:
            entry["test_accuracy"] = _test_accuracy(model, dataset, seed)
        history.append(entry)
    return {
        "train_accuracy": accuracy(
            model,
            dataset.x_train,
            dataset.y_train,
            temporal=temporal,
            seed=seed,
            key=("train-eval",),
            event=EVAL_EVENT_TRAIN,
        ),
        "test_accuracy": _test_accuracy(model, dataset, seed),
        "epochs": epochs,
        "algorithm": model.algorithm,
        "seed": seed,
        "batch": batch,
        "lr": model.optimizer.lr,
        "optimizer": model.optimizer.name,
        "loss": history[-1]["loss"] if history else None,
        "weights_sha256": weights_sha256(model.weights()),
        "history": history,
    }


def _test_accuracy(model: ReferenceModel, dataset: TrainingData, seed: int) -> float:
    return accuracy(
        model,
        dataset.x_test,
        dataset.y_test,
        temporal=bool(dataset.temporal),
        seed=seed,
        key=("test",),
        event=EVAL_EVENT_TEST,
    )


def _check_model(
    model: ReferenceModel, algorithm: str, lr: float | None, optimizer: str | None
) -> None:
    if model.algorithm != algorithm:
        raise ValueError(f"algorithm: {algorithm!r} but the model trains with {model.algorithm!r}")
    if lr is not None and lr != model.optimizer.lr:
        raise ValueError(f"lr: {lr} but the model's optimizer has lr {model.optimizer.lr}")
    if optimizer is not None and optimizer != model.optimizer.name:
        raise ValueError(f"optimizer: {optimizer!r} but the model uses {model.optimizer.name!r}")
