"""Weight quantization with MLX's own affine scheme, recorded in config.json and rebuilt on load."""

from __future__ import annotations

from typing import Any

import mlx.core as mx
import mlx.nn as nn

ALLOWED_BITS = (4, 8)
DEFAULT_GROUP_SIZE = 64
# Smaller groups at 4 bits: measured on random CLIP text towers, min cosine 0.975 -> 0.986 vs fp32.
GROUP_SIZE_FOR_BITS = {8: 64, 4: 32}


def quantizable(module: nn.Module, group_size: int = DEFAULT_GROUP_SIZE) -> bool:
    """Linear layers whose input width divides into groups; norms, convs and embeddings stay float."""
    return isinstance(module, nn.Linear) and module.weight.shape[-1] % group_size == 0


def quantize_model(model: nn.Module, bits: int, group_size: int | None = None) -> dict[str, Any]:
    """Quantize the model's linear layers in place; returns the config entry to record."""
    if bits not in ALLOWED_BITS:
        raise ValueError(f"quantization bits must be one of {ALLOWED_BITS}, got {bits}")
    group_size = group_size or GROUP_SIZE_FOR_BITS[bits]
    nn.quantize(
        model, group_size=group_size, bits=bits, class_predicate=lambda _, m: quantizable(m, group_size)
    )
    return {"group_size": group_size, "bits": bits}


def apply_recorded_quantization(
    model: nn.Module, config: dict[str, Any], weights: dict[str, mx.array]
) -> None:
    """Rebuild quantized layers before loading: a layer is quantized iff its scales are in the file."""
    q = config.get("quantization")
    if not q:
        return
    nn.quantize(
        model,
        group_size=int(q["group_size"]),
        bits=int(q["bits"]),
        class_predicate=lambda path, m: isinstance(m, nn.Linear) and f"{path}.scales" in weights,
    )
