"""SigLIP in MLX, mirroring transformers' `modeling_siglip.py` (5.x) with the checkpoint's own names.

Vision: patch conv + learned positions -> pre-norm encoder -> post_layernorm -> attention-pooling `head`.
Text: tokens + positions -> bidirectional encoder -> final_layer_norm -> last position -> `head` Linear.
"""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn

from ..common.activations import ACTIVATIONS as ALL_ACTIVATIONS
from ..common.errors import ModelError
from .config import ModelConfig, TextConfig, VisionConfig

ACTIVATIONS = {k: ALL_ACTIVATIONS[k] for k in ("gelu_pytorch_tanh", "gelu", "quick_gelu")}


def _attend(q: mx.array, k: mx.array, v: mx.array, heads: int, mask: mx.array | None) -> mx.array:
    """Scaled dot-product attention over (B, T, D) projections; `mask` is boolean (B, 1, 1, S), True = keep."""
    B, T, D = q.shape
    S = k.shape[1]
    hd = D // heads
    q = q.reshape(B, T, heads, hd).transpose(0, 2, 1, 3)  # (B, nh, T, hd)
    k = k.reshape(B, S, heads, hd).transpose(0, 2, 1, 3)  # (B, nh, S, hd)
    v = v.reshape(B, S, heads, hd).transpose(0, 2, 1, 3)
    out = mx.fast.scaled_dot_product_attention(q, k, v, scale=hd**-0.5, mask=mask)
    return out.transpose(0, 2, 1, 3).reshape(B, T, D)  # (B, T, D)


class Attention(nn.Module):
    def __init__(self, dims: int, heads: int) -> None:
        super().__init__()
        self.num_heads = heads
        self.q_proj = nn.Linear(dims, dims)
        self.k_proj = nn.Linear(dims, dims)
        self.v_proj = nn.Linear(dims, dims)
        self.out_proj = nn.Linear(dims, dims)

    def __call__(self, x: mx.array, mask: mx.array | None = None) -> mx.array:
        out = _attend(self.q_proj(x), self.k_proj(x), self.v_proj(x), self.num_heads, mask)
        return self.out_proj(out)


class MLP(nn.Module):
    def __init__(self, config: TextConfig | VisionConfig) -> None:
        super().__init__()
        self.act = ACTIVATIONS[config.hidden_act]
        self.fc1 = nn.Linear(config.hidden_size, config.intermediate_size)
        self.fc2 = nn.Linear(config.intermediate_size, config.hidden_size)

    def __call__(self, x: mx.array) -> mx.array:
        return self.fc2(self.act(self.fc1(x)))


class EncoderLayer(nn.Module):
    def __init__(self, config: TextConfig | VisionConfig) -> None:
        super().__init__()
        self.layer_norm1 = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.self_attn = Attention(config.hidden_size, config.num_attention_heads)
        self.layer_norm2 = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.mlp = MLP(config)

    def __call__(self, x: mx.array, mask: mx.array | None = None) -> mx.array:
        x = x + self.self_attn(self.layer_norm1(x), mask)
        return x + self.mlp(self.layer_norm2(x))


class Encoder(nn.Module):
    def __init__(self, config: TextConfig | VisionConfig) -> None:
        super().__init__()
        self.layers = [EncoderLayer(config) for _ in range(config.num_hidden_layers)]

    def __call__(self, x: mx.array, mask: mx.array | None = None) -> mx.array:
        for layer in self.layers:
            x = layer(x, mask)
        return x


class TextEmbeddings(nn.Module):
    def __init__(self, config: TextConfig) -> None:
        super().__init__()
        self.token_embedding = nn.Embedding(config.vocab_size, config.hidden_size)
        self.position_embedding = nn.Embedding(config.max_position_embeddings, config.hidden_size)

    def __call__(self, input_ids: mx.array) -> mx.array:
        L = input_ids.shape[1]
        if L > self.position_embedding.weight.shape[0]:
            raise ModelError(
                f"text of {L} tokens exceeds max_position_embeddings={self.position_embedding.weight.shape[0]}"
            )
        return self.token_embedding(input_ids) + self.position_embedding.weight[:L]


class TextModel(nn.Module):
    def __init__(self, config: TextConfig) -> None:
        super().__init__()
        self.embeddings = TextEmbeddings(config)
        self.encoder = Encoder(config)
        self.final_layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.head = nn.Linear(config.hidden_size, config.projection_size)

    def __call__(self, input_ids: mx.array, attention_mask: mx.array | None = None) -> mx.array:
        x = self.embeddings(input_ids)  # (N, L, D)
        # Bidirectional (not causal); a given mask hides padded keys, as HF's create_bidirectional_mask does.
        mask = None if attention_mask is None else (attention_mask != 0)[:, None, None, :]  # (N, 1, 1, L)
        x = self.final_layer_norm(self.encoder(x, mask))
        # SigLIP pools the LAST position, whatever token sits there (padding when padded to max_length).
        return self.head(x[:, -1, :])


class MultiheadAttention(nn.Module):
    """torch.nn.MultiheadAttention's parameters as stored: packed `in_proj_weight` (3D, D) = [q; k; v]."""

    def __init__(self, dims: int, heads: int) -> None:
        super().__init__()
        self.num_heads = heads
        self.in_proj_weight = mx.zeros((3 * dims, dims))
        self.in_proj_bias = mx.zeros((3 * dims,))
        self.out_proj = nn.Linear(dims, dims)

    def __call__(self, query: mx.array, kv: mx.array) -> mx.array:
        wq, wk, wv = mx.split(self.in_proj_weight, 3, axis=0)  # each (D, D)
        bq, bk, bv = mx.split(self.in_proj_bias, 3, axis=0)
        q, k, v = query @ wq.T + bq, kv @ wk.T + bk, kv @ wv.T + bv
        return self.out_proj(_attend(q, k, v, self.num_heads, None))


class MultiheadAttentionPoolingHead(nn.Module):
    def __init__(self, config: VisionConfig) -> None:
        super().__init__()
        self.probe = mx.zeros((1, 1, config.hidden_size))
        self.attention = MultiheadAttention(config.hidden_size, config.num_attention_heads)
        self.layernorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.mlp = MLP(config)

    def __call__(self, x: mx.array) -> mx.array:
        probe = mx.broadcast_to(self.probe, (x.shape[0], 1, x.shape[2]))  # (N, 1, D): one learned query
        h = self.attention(probe, x)
        h = h + self.mlp(self.layernorm(h))
        return h[:, 0]


class VisionEmbeddings(nn.Module):
    def __init__(self, config: VisionConfig) -> None:
        super().__init__()
        self.image_size = config.image_size
        self.patch_embedding = nn.Conv2d(
            config.num_channels, config.hidden_size, kernel_size=config.patch_size, stride=config.patch_size
        )
        self.position_embedding = nn.Embedding(
            (config.image_size // config.patch_size) ** 2, config.hidden_size
        )

    def __call__(self, pixel_values: mx.array) -> mx.array:
        if pixel_values.ndim != 4 or pixel_values.shape[1:3] != (self.image_size, self.image_size):
            raise ModelError(
                f"pixel_values shape {tuple(pixel_values.shape)}: expected (N, {self.image_size}, {self.image_size}, C)"
            )
        x = self.patch_embedding(pixel_values.astype(self.patch_embedding.weight.dtype))  # (N, gh, gw, D)
        x = x.reshape(x.shape[0], -1, x.shape[-1])  # (N, gh*gw, D), row-major like torch's flatten(2)
        return x + self.position_embedding.weight


class VisionModel(nn.Module):
    def __init__(self, config: VisionConfig) -> None:
        super().__init__()
        self.embeddings = VisionEmbeddings(config)
        self.encoder = Encoder(config)
        self.post_layernorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.head = MultiheadAttentionPoolingHead(config)

    def __call__(self, pixel_values: mx.array) -> mx.array:
        x = self.post_layernorm(self.encoder(self.embeddings(pixel_values)))
        return self.head(x)


class Model(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.text_model = TextModel(config.text_config)
        self.vision_model = VisionModel(config.vision_config)
        self.logit_scale = mx.zeros((1,))  # log space, as in the checkpoint
        self.logit_bias = mx.zeros((1,))

    def get_image_features(self, pixel_values: mx.array) -> mx.array:
        """(N, H, W, C) float pixels -> (N, embed_dim) UNnormalised pooled image features."""
        return self.vision_model(pixel_values)

    def get_text_features(self, input_ids: mx.array, attention_mask: mx.array | None = None) -> mx.array:
        """(N, L) ids -> (N, embed_dim) UNnormalised features; see `Tokenizer` for why its mask is all ones."""
        return self.text_model(input_ids, attention_mask)


def sanitize(weights: dict[str, mx.array]) -> dict[str, mx.array]:
    """HF SiglipModel state dict -> MLX layout. Idempotent: layouts are recognised by shape."""
    out: dict[str, mx.array] = {}
    for k, v in weights.items():
        if k.endswith("position_ids"):  # non-persistent buffer in older checkpoints
            continue
        if k.endswith("patch_embedding.weight") and v.ndim == 4 and v.shape[2] == v.shape[3] != v.shape[1]:
            # PyTorch conv [out, in, kh, kw] -> MLX [out, kh, kw, in]; config forbids patch_size == channels.
            v = v.transpose(0, 2, 3, 1)
        out[k] = v
    return out
