"""The reference model: a network, its weights in backends (ideal floats here, crossbars in
:mod:`emulator.physics.blocks`), its algorithm and optimizer; forward, gradients, updates."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from emulator.learning.optim import make_optimizer
from emulator.learning.rule import (
    ALGORITHMS,
    _conv_rows,
    feedback_scale,
    local_gradient,
    loss_value,
    output_error,
    output_spike_error,
    spike_error,
    weight_gradient,
)
from emulator.learning.snn import LayerBackend, Neuron, col2im, conv2d, fc, pool, pool_backward
from emulator.rng import skip, stream
from emulator.spec import (
    ConvLayer,
    FcLayer,
    NetworkSpec,
    PoolLayer,
    feedback_widths,
    layer_shapes,
    training_options,
    weighted_layers,
)

INIT_GAIN = 4.0
"""Gain on PyTorch's default init (uniform ±1/√fan_in) so that an untrained network spikes.

Measured on digits (64 features in [0, 1], mean 0.31, rate-coded, T = 8, 512 samples) with the
64-128-10 LIF net (τ = 2, θ = 1), mean over init seeds 0-4: hidden firing rate 0.10 (0.09-0.12
by seed; gain 3: 0.06, gain 5: 0.15, gain 1: 0.00), output firing rate 0.02. Gains 3 and 5
trained no better on digits.
"""


class FeedbackBackend(Protocol):
    """Where SDFA's fixed random feedback matrix lives (ideal floats or never-programmed cells)."""

    def project(self, e: np.ndarray, layer: int, event: tuple[int, ...]) -> np.ndarray:
        """The output error e (B, C_out) through B's first n_l columns, e·B[:, :n_l] (B, n_l),
        for hidden layer ``layer`` (the rule scales it: :func:`feedback_scale`)."""
        ...


class IdealLayer:
    """A weighted layer's matrix as exact float64 (no device effects)."""

    def __init__(self, w: np.ndarray) -> None:
        self._w = np.array(w, dtype=np.float64)

    def matmul(self, x: np.ndarray, event: tuple[int, ...]) -> np.ndarray:
        """``x @ W.T`` over (T, N, n_in), as one product."""
        x = np.asarray(x, dtype=np.float64)
        return (x.reshape(-1, x.shape[-1]) @ self._w.T).reshape(*x.shape[:-1], -1)

    def weights(self) -> np.ndarray:
        """W (read-only view; later updates do not change it)."""
        view = self._w.view()
        view.flags.writeable = False
        return view

    def apply_update(self, delta: np.ndarray, event: tuple[int, ...]) -> None:
        """``W += delta``, into a new array so earlier :meth:`weights` stay as they were."""
        self._w = self._w + delta

    def snapshot(self) -> np.ndarray:
        """W as it is now (updates replace the array, so this stays)."""
        return self._w

    def restore(self, w: np.ndarray) -> None:
        """Take back a :meth:`snapshot`."""
        self._w = w

    def set_weights(self, w: np.ndarray) -> None:
        """Replace W (for loading a checkpoint)."""
        if np.shape(w) != self._w.shape:
            raise ValueError(f"weights: expected shape {self._w.shape}, got {np.shape(w)}")
        self._w = np.array(w, dtype=np.float64)


class IdealFeedback:
    """SDFA's feedback in floats: one matrix B (C_out, M); layer l uses ``B[:, :n_l]``."""

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
        """``e·B[:, :n_l]`` for hidden weighted layer ``layer``."""
        return e @ self.matrix[:, : self.widths[layer]]


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


def init_gain(net: NetworkSpec) -> float:
    """The gain on U(±1/√fan_in) the network file's ``training.init`` names."""
    return INIT_GAIN if net.training.init == "scaled" else 1.0


def init_weights(net: NetworkSpec, seed: int, *, gain: float | None = None) -> list[np.ndarray]:
    """Initial W per weighted layer (:func:`layer_init`; ``gain`` None: the network file's
    ``training.init``, :func:`init_gain`)."""
    return [layer_init(net, seed, index, gain=gain) for index in range(len(weight_shapes(net)))]


def layer_init(
    net: NetworkSpec,
    seed: int,
    index: int,
    *,
    gain: float | None = None,
    outputs: slice = slice(None),
) -> np.ndarray:
    """Initial W of weighted layer ``index``: ``gain`` × U(±1/√fan_in) from
    ``stream(seed, "init", index)``, row by row; ``outputs`` (a step-1 slice) picks rows, drawn
    from where they sit in that stream (a PE core holding some of a layer's columns draws
    those only)."""
    n_out, fan_in = weight_shapes(net)[index]
    bound = (init_gain(net) if gain is None else gain) / math.sqrt(fan_in)
    rows = range(n_out)[outputs]
    if rows.step != 1:
        raise ValueError(f"outputs: a slice of consecutive rows, got step {rows.step}")
    generator = skip(stream(seed, "init", index), rows.start * fan_in)
    return generator.uniform(-bound, bound, (len(rows), fan_in))


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


Observer = Callable[["ReferenceModel", Trace, np.ndarray], None]
"""What :meth:`ReferenceModel.train_batch` tells an observer: the model, the batch's trace and
its output error e (B, C_out), after the update (e.g.
:class:`emulator.cost.record.TrainingRecorder`)."""


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
        init_gain: float | None = None,
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
        self.feedback_width = max(feedback_widths(net), default=0)  # M
        t = training_options(net, lr=lr, optimizer=optimizer)
        self.optimizer = make_optimizer(t.optimizer, t.lr)
        self.last_fr = np.zeros((0, net.num_classes))  # class rates of the last trained batch

    # ---------------------------------------------------------------- forward

    def forward(self, x: np.ndarray, event: tuple[int, ...] = ()) -> Trace:
        """Run spikes x (T, B, *input_shape); each layer's matmul takes every step at once, as
        event ``event``."""
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
                h, out = self.neuron.run(_currents(layer, backend, a, event))
                hs.append(h)
            a = out.reshape(steps, batch, *self.shapes[i + 1])
            ss.append(a)
        rates = a.reshape(steps, batch, -1).mean(axis=0)
        fr = rates.reshape(batch, self.net.num_classes, -1).mean(axis=2)
        return Trace(xs, hs, ss, rates, fr)

    def loss(self, fr: np.ndarray, y: np.ndarray) -> float:
        """The network file's loss (MSE or cross-entropy) of class rates against labels."""
        return loss_value(fr, y, self.net.training.loss)

    def predict(self, x: np.ndarray, event: tuple[int, ...] = ()) -> np.ndarray:
        """Class with the highest rate (the first on ties)."""
        return self.forward(x, event).fr.argmax(axis=1)

    def output_error(self, fr: np.ndarray, y: np.ndarray) -> np.ndarray:
        """``e = ∂loss/∂rates`` (B, C_out): each output gets its class's gradient / group size."""
        group = math.prod(self.shapes[-1]) // fr.shape[1]
        return output_error(fr, y, group, self.net.training.loss)

    # -------------------------------------------------------------- gradients

    def gradients(
        self, x: np.ndarray, y: np.ndarray, event: tuple[int, ...] = ()
    ) -> list[np.ndarray]:
        """``∂loss/∂W`` per weighted layer under the model's algorithm (to be descended)."""
        trace = self.forward(x, event)
        return self._gradients(trace, self.output_error(trace.fr, y), event)

    def _gradients(self, trace: Trace, e: np.ndarray, event: tuple[int, ...]) -> list[np.ndarray]:
        if self.algorithm == "bptt":
            return self._bptt(trace, e)
        steps = trace.x[0].shape[0]
        last = self.weighted[-1]
        grads = []
        for index, i in enumerate(self.weighted):
            h = trace.h[i]
            assert h is not None
            if i == last:
                g = output_spike_error(e, steps)
            else:
                g = self.feedback.project(e, index, event) * feedback_scale(self.feedback_width)
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
                    output=i == last,
                )
            )
        return grads

    def _bptt(self, trace: Trace, e: np.ndarray) -> list[np.ndarray]:
        steps, batch = trace.x[0].shape[:2]
        grads: list[np.ndarray] = [np.empty(0)] * len(self.weighted)
        grad_s = np.broadcast_to(
            output_spike_error(e, steps).reshape(1, batch, -1), trace.s[-1].shape
        )
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

    def train_batch(
        self,
        x: np.ndarray,
        y: np.ndarray,
        event: tuple[int, ...] = (),
        observe: Observer | None = None,
    ) -> float:
        """One update: gradients → optimizer → each backend's ``apply_update``; the batch loss.
        ``observe(model, trace, e)`` sees the batch once its update is applied."""
        trace = self.forward(x, event)
        self.last_fr = trace.fr
        e = self.output_error(trace.fr, y)
        deltas = self.optimizer.step(self._gradients(trace, e, event))
        for backend, delta in zip(self.backends, deltas, strict=True):
            backend.apply_update(delta, event)
        if observe is not None:
            observe(self, trace, e)
        return self.loss(trace.fr, y)

    def weights(self) -> list[np.ndarray]:
        """Effective W per weighted layer."""
        return [b.weights() for b in self.backends]

    def snapshot(self) -> list[Any]:
        """Every backend's state now (copies), for :meth:`restore` (the best epoch's weights)."""
        return [b.snapshot() for b in self.backends]

    def restore(self, saved: list[Any]) -> None:
        """Take back a :meth:`snapshot`."""
        for backend, state in zip(self.backends, saved, strict=True):
            backend.restore(state)

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


def _currents(
    layer: FcLayer | ConvLayer, backend: LayerBackend, a: np.ndarray, event: tuple[int, ...]
) -> np.ndarray:
    if isinstance(layer, ConvLayer):
        return conv2d(a, backend, layer.kernel, layer.stride, layer.padding, event)
    return fc(a, backend, event)


def weights_sha256(weights: Sequence[np.ndarray]) -> str:
    """SHA-256 hex of each matrix in order as float64 little-endian C-order bytes."""
    digest = hashlib.sha256()
    for w in weights:
        digest.update(np.ascontiguousarray(w, dtype="<f8").tobytes())
    return digest.hexdigest()
