"""The activations the ports implement, by their Hugging Face `hidden_act` names (one copy for every family)."""

from __future__ import annotations

import math
from collections.abc import Callable

import mlx.core as mx
import mlx.nn as nn


def quick_gelu(x: mx.array) -> mx.array:
    return x * mx.sigmoid(1.702 * x)


def gelu_tanh(x: mx.array) -> mx.array:
    # Written out rather than nn.gelu_approx so the formula visibly equals PyTorch's approximate="tanh".
    return 0.5 * x * (1.0 + mx.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))


ACTIVATIONS: dict[str, Callable[[mx.array], mx.array]] = {
    "quick_gelu": quick_gelu,
    "gelu": nn.gelu,  # erf-based, as torch's default GELU
    "gelu_new": gelu_tanh,
    "gelu_pytorch_tanh": gelu_tanh,
    "silu": nn.silu,
    "relu": nn.relu,
}
