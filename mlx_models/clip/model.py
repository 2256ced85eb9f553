"""CLIP in MLX, following transformers' `modeling_clip.py`; attribute names copy the checkpoint keys."""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn

from ..common.activations import ACTIVATIONS
from ..common.errors import ModelError
from .config import ModelConfig, TextConfig, VisionConfig

ACT_FNS = {k: ACTIVATIONS[k] for k in ("quick_gelu", "gelu", "gelu_new", "gelu_pytorch_tanh")}


class Attention(nn.Module):
    def __init__(self, dims: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.scale = (dims // num_heads) ** -0.5
        self.k_proj = nn.Linear(dims, dims)
        self.v_proj = nn.Linear(dims, dims)
        self.q_proj = nn.Linear(dims, dims)
        self.out_proj = nn.Linear(dims, dims)

    def __call__(self, x: mx.array, mask: mx.array | None = None) -> mx.array:
        B, L, D = x.shape
        q, k, v = (
            p(x).reshape(B, L, self.num_heads, -1).transpose(0, 2, 1, 3)
            for p in (self.q_proj, self.k_proj, self.v_proj)
        )
        # q, k, v: (B, heads, L, head_dim)
        out = mx.fast.scaled_dot_product_attention(q, k, v, scale=self.scale, mask=mask)
        return self.out_proj(out.transpose(0, 2, 1, 3).reshape(B, L, D))  # back to (B, L, D)


class MLP(nn.Module):
    def __init__(self, config: TextConfig | VisionConfig) -> None:
        super().__init__()
        self.activation_fn = ACT_FNS[config.hidden_act]
        self.fc1 = nn.Linear(config.hidden_size, config.intermediate_size)
        self.fc2 = nn.Linear(config.intermediate_size, config.hidden_size)

    def __call__(self, x: mx.array) -> mx.array:
        return self.fc2(self.activation_fn(self.fc1(x)))


class EncoderLayer(nn.Module):
    """Pre-norm transformer block."""

    def __init__(self, config: TextConfig | VisionConfig) -> None:
        super().__init__()
        self.self_attn = Attention(config.hidden_size, config.num_attention_heads)
        self.layer_norm1 = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.mlp = MLP(config)
        self.layer_norm2 = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

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
        return self.token_embedding(input_ids) + self.position_embedding.weight[:L]


def _first_index(hit: mx.array) -> mx.array:
    """Per row, the first position where `hit` is true; 0 where none is (what torch's argmax gives)."""
    L = hit.shape[-1]
    first = mx.where(hit, mx.arange(L), L).min(axis=-1)
    return mx.where(first == L, 0, first)


class TextTransformer(nn.Module):
    def __init__(self, config: TextConfig) -> None:
        super().__init__()
        self.config = config
        self.embeddings = TextEmbeddings(config)
        self.encoder = Encoder(config)
        self.final_layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def eos_positions(self, input_ids: mx.array) -> mx.array:
        """Where transformers pools: the argmax token id when eos_token_id == 2 (pre-#24773 configs),
        else the first occurrence of eos_token_id (the pad token may equal EOS)."""
        if self.config.eos_token_id == 2:
            return _first_index(input_ids == input_ids.max(axis=-1, keepdims=True))
        return _first_index(input_ids == self.config.eos_token_id)

    def __call__(self, input_ids: mx.array, attention_mask: mx.array | None = None) -> mx.array:
        """(B, L) token ids -> (B, hidden) pooled, final-normed EOS states."""
        B, L = input_ids.shape
        if L > self.config.max_position_embeddings:
            raise ModelError(
                f"{L} tokens exceed max_position_embeddings={self.config.max_position_embeddings}"
            )
        x = self.embeddings(input_ids)
        idx = mx.arange(L)
        mask = (idx[None, :] <= idx[:, None])[None, None]  # causal: query i sees keys <= i; (1, 1, L, L)
        if attention_mask is not None:
            # Padding hides keys; the diagonal stays open so a pad row is never all-masked (NaN), which
            # changes only pad rows, never read by the pooling below.
            keep = (attention_mask != 0)[:, None, None, :] | (idx[None, :] == idx[:, None])
            mask = mask & keep  # (B, 1, L, L)
        x = self.final_layer_norm(self.encoder(x, mask))
        return x[mx.arange(B), self.eos_positions(input_ids)]


class VisionEmbeddings(nn.Module):
    def __init__(self, config: VisionConfig) -> None:
        super().__init__()
        self.config = config
        self.class_embedding = mx.zeros((config.hidden_size,))
        self.patch_embedding = nn.Conv2d(
            config.num_channels,
            config.hidden_size,
            kernel_size=config.patch_size,
            stride=config.patch_size,
            bias=False,
        )
        self.position_embedding = nn.Embedding(config.num_patches + 1, config.hidden_size)

    def __call__(self, pixel_values: mx.array) -> mx.array:
        B = pixel_values.shape[0]
        w = self.patch_embedding.weight
        patches = self.patch_embedding(pixel_values.astype(w.dtype))  # (B, H/p, W/p, D)
        patches = patches.reshape(B, -1, w.shape[0])  # (B, num_patches, D)
        cls = mx.broadcast_to(self.class_embedding.astype(w.dtype), (B, 1, w.shape[0]))
        return (
            mx.concatenate([cls, patches], axis=1) + self.position_embedding.weight
        )  # (B, 1 + num_patches, D)


class VisionTransformer(nn.Module):
    def __init__(self, config: VisionConfig) -> None:
        super().__init__()
        self.config = config
        self.embeddings = VisionEmbeddings(config)
        self.pre_layrnorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)  # sic, the HF key
        self.encoder = Encoder(config)
        self.post_layernorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def __call__(self, pixel_values: mx.array) -> mx.array:
        """(B, H, W, C) pixels -> (B, hidden) post-normed class-token states."""
        c = self.config
        expected = (c.image_size, c.image_size, c.num_channels)
        if pixel_values.ndim != 4 or tuple(pixel_values.shape[1:]) != expected:
            raise ModelError(
                f"pixel_values must be (N, {', '.join(map(str, expected))}), got {tuple(pixel_values.shape)}"
            )
        x = self.encoder(self.pre_layrnorm(self.embeddings(pixel_values)))
        return self.post_layernorm(x[:, 0])


class Model(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.text_model = TextTransformer(config.text_config)
        self.vision_model = VisionTransformer(config.vision_config)
        self.visual_projection = nn.Linear(
            config.vision_config.hidden_size, config.projection_dim, bias=False
        )
        self.text_projection = nn.Linear(config.text_config.hidden_size, config.projection_dim, bias=False)
        self.logit_scale = mx.array(config.logit_scale_init_value)  # log space, as in the checkpoint

    def get_image_features(self, pixel_values: mx.array) -> mx.array:
        """(N, H, W, 3) normalised pixels -> (N, projection_dim) unnormalised image embeddings."""
        return self.visual_projection(self.vision_model(pixel_values))

    def get_text_features(self, input_ids: mx.array, attention_mask: mx.array | None = None) -> mx.array:
        """(N, L) token ids (+ mask) -> (N, projection_dim) unnormalised text embeddings."""
        return self.text_projection(self.text_model(input_ids, attention_mask))


def _is_torch_conv(shape: tuple[int, ...]) -> bool:
    # PyTorch [out, in, k, k] vs MLX [out, k, k, in]; equal-looking when in == k, which VisionConfig refuses.
    return len(shape) == 4 and shape[2] == shape[3] and shape[1] != shape[2]


def sanitize(weights: dict[str, mx.array]) -> dict[str, mx.array]:
    """HF CLIP state dict -> MLX layout; idempotent, so an already-sanitised file passes unchanged."""
    out = {}
    for key, value in weights.items():
        if key.endswith("position_ids"):  # a non-persistent buffer in HF, saved by old checkpoints
            continue
        if key.endswith("patch_embedding.weight") and _is_torch_conv(tuple(value.shape)):
            value = value.transpose(0, 2, 3, 1)  # conv [out, in, kh, kw] -> MLX [out, kh, kw, in]
        out[key] = value
    return out
