"""Helpers shared by the checkpoint builders."""

from __future__ import annotations


def randomize_all_parameters(model, seed: int, std: float = 0.05) -> None:
    """Give every parameter (LayerNorm weights and biases too) random values.

    HF's init leaves norms at 1/0 and biases at 0, which would hide a dropped or swapped term.
    Norm weights are drawn around 1 so activations stay in a sane range.
    """
    import torch

    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=g, dtype=torch.float32) * std
            if "norm" in name and name.endswith("weight"):
                p.copy_(1.0 + noise)
            elif name.endswith("logit_scale"):
                p.fill_(2.659 + float(noise.flatten()[0]))  # log(1/0.07), CLIP's init
            else:
                p.copy_(noise.to(p.dtype))
