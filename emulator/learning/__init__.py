"""The reference trainer: SDFA, SDFA with local BPTT, and BPTT on a single-process numpy model.

This is the oracle the rest of the emulator is tested against
(docs/architecture.md#one-oracle). Every weighted layer (fc or conv, each followed by a
spiking neuron) keeps its matrix W in a
:class:`LayerBackend` (ideal floats here, a crossbar model elsewhere): W is (n_out, n_in) for
fc and the im2col matrix (OC, IC·K·K) for conv, columns ordered channel, then kernel row, then
kernel column. Layers are numbered by their position among the weighted layers (pool layers
do not count): that index keys the init stream, the backend list and the feedback slices.

The algorithms (docs/algorithm.md#forms), with ``e = ∂loss/∂(output rates)`` of shape (B, C_out):

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

from emulator.learning.loop import (
    EVAL_EVENT_TEST,
    EVAL_EVENT_TRAIN,
    EVAL_EVENT_VAL,
    TrainingData,
    accuracy,
    network_inputs,
    train,
    validation_split,
)
from emulator.learning.model import (
    INIT_GAIN,
    FeedbackBackend,
    IdealFeedback,
    IdealLayer,
    Observer,
    ReferenceModel,
    Trace,
    feedback_matrix,
    init_weights,
    layer_init,
    weight_shapes,
    weights_sha256,
)
from emulator.learning.optim import OPTIMIZERS, Adam, Sgd, make_optimizer
from emulator.learning.rule import (
    ALGORITHMS,
    feedback_scale,
    local_gradient,
    loss_value,
    mse_loss,
    output_error,
    output_spike_error,
    spike_error,
    weight_gradient,
)
from emulator.learning.snn import LayerBackend
from emulator.spec import feedback_widths, weighted_layers

__all__ = [
    "ALGORITHMS",
    "EVAL_EVENT_TEST",
    "EVAL_EVENT_TRAIN",
    "EVAL_EVENT_VAL",
    "INIT_GAIN",
    "OPTIMIZERS",
    "Adam",
    "FeedbackBackend",
    "IdealFeedback",
    "IdealLayer",
    "LayerBackend",
    "Observer",
    "ReferenceModel",
    "Sgd",
    "Trace",
    "TrainingData",
    "accuracy",
    "feedback_matrix",
    "feedback_scale",
    "feedback_widths",
    "init_weights",
    "layer_init",
    "local_gradient",
    "loss_value",
    "make_optimizer",
    "mse_loss",
    "network_inputs",
    "output_error",
    "output_spike_error",
    "spike_error",
    "train",
    "validation_split",
    "weight_gradient",
    "weight_shapes",
    "weighted_layers",
    "weights_sha256",
]
