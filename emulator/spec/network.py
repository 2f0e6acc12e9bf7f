"""Network files: the pydantic models of an SNN (input, time steps, neuron, layers, training
defaults), and the shapes every other room derives from them (one copy each)."""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import Field, model_validator

from emulator.spec.chip import PosFloat, PosInt, Spec

# -------------------------------------------------------------------------- network


class NeuronSpec(Spec):
    """The spiking neuron after every weighted layer."""

    model: Literal["lif", "if"] = Field("lif", description="LIF (leaky) or IF (no leak).")
    tau: float = Field(2.0, ge=1.0, description="LIF time constant in steps (SDFA code: 2).")
    threshold: PosFloat = Field(1.0, description="Firing threshold (SDFA code: 1.0).")
    reset: Literal["zero", "subtract"] = Field(
        "zero", description="Reset to 0 (SDFA code) or subtract the threshold."
    )
    surrogate_alpha: PosFloat = Field(2.0, description="ATan surrogate α (SDFA code: 2).")


class FcLayer(Spec):
    """Fully connected layer (inputs are flattened)."""

    type: Literal["fc"] = Field(description="Layer kind.")
    out: PosInt = Field(description="Output neurons.")
    in_features: PosInt | None = Field(None, description="Optional check of the input size.")


class ConvLayer(Spec):
    """2-D convolution over (channels, height, width)."""

    type: Literal["conv"] = Field(description="Layer kind.")
    out_channels: PosInt = Field(description="Output channels.")
    kernel: PosInt = Field(3, description="Square kernel size.")
    stride: PosInt = Field(1, description="Stride.")
    padding: Annotated[int, Field(ge=0)] = Field(0, description="Zero padding on each side.")
    in_channels: PosInt | None = Field(None, description="Optional check of the input channels.")


class PoolLayer(Spec):
    """Spatial pooling of spikes (max = OR of spikes); no neuron follows it."""

    type: Literal["pool"] = Field(description="Layer kind.")
    mode: Literal["max", "avg"] = Field("max", description="max or avg pooling.")
    kernel: PosInt = Field(2, description="Square window.")


Layer = Annotated[FcLayer | ConvLayer | PoolLayer, Field(discriminator="type")]


class TrainingSpec(Spec):
    """Training defaults for this network (command-line flags override them)."""

    epochs: PosInt = Field(10, description="Epochs.")
    batch: PosInt = Field(32, description="Samples per weight update.")
    lr: PosFloat = Field(1e-3, description="Learning rate (of the first epoch, with a schedule).")
    optimizer: Literal["adam", "sgd"] = Field("adam", description="Adam (SDFA code) or SGD.")
    schedule: Literal["constant", "step", "cosine"] = Field(
        "constant",
        description="Learning rate over the epochs: constant; step (× step_gamma every "
        "step_epochs); cosine (lr·(1 + cos(π·epoch/epochs))/2, PyTorch's CosineAnnealingLR "
        "over the run's epochs, as the SDFA authors' train.py).",
    )
    step_epochs: PosInt = Field(30, description="schedule step: epochs between decays.")
    step_gamma: float = Field(
        0.1, gt=0.0, le=1.0, description="schedule step: the factor of each decay."
    )
    loss: Literal["mse", "cross_entropy"] = Field(
        "mse",
        description="mse: mean squared error of the class rates against one-hot labels (the "
        "SDFA authors' train.py); cross_entropy: of the softmax of the class rates.",
    )
    eval_batch: PosInt = Field(
        256,
        description="Samples per evaluation batch: what is run at once to measure accuracy, "
        "and (as the batch's index) the key of its read noise, in every runtime alike.",
    )
    init: Literal["scaled", "pytorch"] = Field(
        "scaled",
        description="Initial weights: scaled, 4 × U(±1/√fan_in) so that an untrained network "
        "spikes (ours); pytorch, U(±1/√fan_in), PyTorch's default (the SDFA authors').",
    )


class NetworkSpec(Spec):
    """An SNN: input, time steps, neuron, layers."""

    name: str = Field(description="Network name.")
    description: str = Field("", description="Free text, with the source of the shapes.")
    input_shape: list[PosInt] = Field(description="One input frame: [features] or [C, H, W].")
    encoding: Literal["rate", "events"] = Field(
        "rate",
        description="rate: static values in [0,1] become Bernoulli spikes each step; "
        "events: the dataset supplies T binary frames.",
    )
    time_steps: PosInt = Field(description="Time steps T per sample.")
    num_classes: PosInt = Field(description="Classes; the last layer's outputs vote in groups.")
    neuron: NeuronSpec = Field(default_factory=NeuronSpec, description="Spiking neuron.")
    layers: list[Layer] = Field(min_length=1, description="Layers, input to output.")
    training: TrainingSpec = Field(default_factory=TrainingSpec, description="Training defaults.")

    @model_validator(mode="after")
    def _shapes(self) -> NetworkSpec:
        shapes = layer_shapes(self)
        if not isinstance(self.layers[-1], (FcLayer, ConvLayer)):
            raise ValueError("layers: the last layer must be fc or conv (the output neurons)")
        out = math.prod(shapes[-1])
        if out % self.num_classes:
            raise ValueError(
                f"num_classes: the last layer has {out} outputs, not a multiple of num_classes "
                f"({self.num_classes})"
            )
        return self


def layer_shapes(net: NetworkSpec) -> list[tuple[int, ...]]:
    """Output shape of every layer (index 0 is the input); raises ValueError on a mismatch."""
    shape = tuple(net.input_shape)
    shapes = [shape]
    for i, layer in enumerate(net.layers):
        where = f"layers.{i}"
        if isinstance(layer, FcLayer):
            n_in = math.prod(shape)
            if layer.in_features is not None and layer.in_features != n_in:
                raise ValueError(
                    f"{where}.in_features: is {layer.in_features} but the previous layer "
                    f"outputs {n_in} values {list(shape)}"
                )
            shape = (layer.out,)
        else:
            if len(shape) != 3:
                raise ValueError(
                    f"{where}: {layer.type} needs a [C, H, W] input, got {list(shape)}"
                )
            c, h, w = shape
            if isinstance(layer, ConvLayer):
                if layer.in_channels is not None and layer.in_channels != c:
                    raise ValueError(
                        f"{where}.in_channels: is {layer.in_channels} but the previous layer "
                        f"outputs {c} channels"
                    )
                k, s, p = layer.kernel, layer.stride, layer.padding
                h, w = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
                c = layer.out_channels
            else:
                h, w = h // layer.kernel, w // layer.kernel
            if h < 1 or w < 1:
                raise ValueError(f"{where}: the {layer.type} window is larger than its input")
            shape = (c, h, w)
        shapes.append(shape)
    return shapes


def feedback_widths(net: NetworkSpec) -> list[int]:
    """Width of the error each hidden weighted layer receives from SDFA's feedback: its
    outputs after the pool layers that follow it (the authors' ConvBlock: conv → neuron →
    max-pool → DFA), so n_l for an fc layer and the pooled size for a pooled conv layer."""
    shapes, weighted = layer_shapes(net), weighted_layers(net)
    return [math.prod(shapes[i + 1 + len(pools_after(net, i))]) for i in weighted[:-1]]


def pools_after(net: NetworkSpec, index: int) -> list[int]:
    """Indices of the pool layers that follow ``net.layers[index]`` (its outputs are sent on
    after them)."""
    pools, j = [], index + 1
    while j < len(net.layers) and isinstance(net.layers[j], PoolLayer):
        pools.append(j)
        j += 1
    return pools


def weighted_layers(net: NetworkSpec) -> list[int]:
    """Indices into ``net.layers`` of the weighted (fc, conv) layers, in order: the layers
    every other room numbers 0, 1, … (pool layers do not count)."""
    return [i for i, layer in enumerate(net.layers) if not isinstance(layer, PoolLayer)]


def training_options(
    net: NetworkSpec,
    *,
    epochs: int | None = None,
    batch: int | None = None,
    lr: float | None = None,
    optimizer: str | None = None,
) -> TrainingSpec:
    """The network file's training defaults with the options given (None: the file's): the
    one place a run's training settings are resolved."""
    given = {"epochs": epochs, "batch": batch, "lr": lr, "optimizer": optimizer}
    return net.training.model_copy(update={k: v for k, v in given.items() if v is not None})


def epoch_lr(training: TrainingSpec, epoch: int) -> float:
    """The learning rate of epoch ``epoch`` (0-based) under ``training``'s schedule, over its
    ``epochs`` (resolved: :func:`training_options`): the one place both the reference trainer
    and the chip's tiles take it from."""
    if training.schedule == "step":
        return training.lr * training.step_gamma ** (epoch // training.step_epochs)
    if training.schedule == "cosine":
        return training.lr * (1.0 + math.cos(math.pi * epoch / training.epochs)) / 2.0
    return training.lr
