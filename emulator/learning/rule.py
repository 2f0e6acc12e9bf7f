"""SDFA's learning rule and the gradients every form shares: the output error, the error of a
layer's spikes (through its pools), the feedback scale, the local gradient, the weight
gradient. The reference model (:mod:`emulator.learning.model`) and the chip's tiles
(:mod:`emulator.chip.tile`) both call these: one copy of each rule."""

from __future__ import annotations

import math

import numpy as np

from emulator.learning.snn import Neuron, im2col, pool, pool_backward
from emulator.spec import ConvLayer, FcLayer, NetworkSpec, layer_shapes, pools_after

ALGORITHMS = ("sdfa", "sdfa-local-bptt", "bptt")


LOSSES = ("mse", "cross_entropy")


def mse_loss(fr: np.ndarray, y: np.ndarray) -> float:
    """``mean((fr - one_hot(y))²)`` over batch and classes."""
    return float(np.mean((fr - _one_hot(y, fr.shape[1])) ** 2))


def loss_value(fr: np.ndarray, y: np.ndarray, kind: str = "mse") -> float:
    """The batch loss of class rates ``fr`` (B, C): :func:`mse_loss`, or the cross-entropy
    of their softmax, ``mean(−log softmax(fr)[y])``."""
    if kind == "cross_entropy":
        z = fr - fr.max(axis=1, keepdims=True)
        log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        return float(-np.mean(log_p[np.arange(len(y)), np.asarray(y)]))
    return mse_loss(fr, y)


def _one_hot(y: np.ndarray, classes: int) -> np.ndarray:
    return np.eye(classes)[np.asarray(y)]


def feedback_scale(width: int) -> float:
    """SDFA's 1/√M: g = e·B/√M for a feedback matrix B of M columns (docs/algorithm.md#feedback)."""
    return 1.0 / math.sqrt(width)


def output_spike_error(e: np.ndarray, steps: int) -> np.ndarray:
    """The output layer's true spike gradient e/T: its rates are spikes averaged over T."""
    return e / steps


def output_error(fr: np.ndarray, y: np.ndarray, group: int, kind: str = "mse") -> np.ndarray:
    """``e = ∂loss/∂rates`` (B, C·group) of :func:`loss_value` on class rates ``fr`` (B, C):
    each output neuron gets its class's gradient divided by the voting group size."""
    batch, classes = fr.shape
    if kind == "cross_entropy":
        z = np.exp(fr - fr.max(axis=1, keepdims=True))
        e = (z / z.sum(axis=1, keepdims=True) - _one_hot(y, classes)) / batch
    else:
        e = 2.0 * (fr - _one_hot(y, classes)) / (batch * classes)
    return np.repeat(e / group, group, axis=1)


def spike_error(net: NetworkSpec, index: int, s: np.ndarray, g: np.ndarray) -> np.ndarray:
    """``∂loss/∂s[t]`` (T, B, *out shape) of the weighted layer ``net.layers[index]`` whose
    spikes are ``s``, from an error ``g`` (B, …) that is the same at every step, given after
    the pool layers that follow it (docs/algorithm.md#feedback; the authors' ConvBlock).
    Without a pool: g at every step. Through a max pool: each window's error goes to that
    step's winner (the first position holding the window's max: its first spike, or its
    first position when none fired, PyTorch's rule), so the route changes with t; an avg
    pool spreads it evenly.
    """
    steps, batch = s.shape[:2]
    pools = [net.layers[j] for j in pools_after(net, index)]
    sent = layer_shapes(net)[index + 1 + len(pools)]
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
    *,
    output: bool = False,
) -> np.ndarray:
    """A layer's weight gradient from the error of its own spikes ``grad_s`` (T, B, *out
    shape; :func:`spike_error`): a hidden layer under ``sdfa`` through the surrogate only;
    under ``sdfa-local-bptt``, and the ``output`` layer under either, through the layer's own
    membrane recurrence over the T steps (its true gradient: docs/algorithm.md#local-gradient
    and the authors' code, whose output layer has no feedback after it). ``h``, ``s`` (T, B,
    *out shape) and ``inputs`` (T, B, *in shape) are the forward's. This is the whole of
    SDFA's per-layer learning rule."""
    if algorithm != "sdfa" or output:
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


def _conv_rows(grad: np.ndarray) -> np.ndarray:
    """(T, B, OC, H, W) → (T·B·H·W, OC), rows in im2col order."""
    channels = grad.shape[2]
    return np.moveaxis(grad.reshape(-1, *grad.shape[2:]), 1, -1).reshape(-1, channels)
