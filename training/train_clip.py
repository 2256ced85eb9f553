"""Train the bundled demo CLIP on generated scenes and save it as a Hugging Face CLIPModel folder.

    python -m training.train_clip --seed 0 --out /tmp/fovea-demo-hf

Deterministic from the seed on one machine (fixed thread count, data drawn from seeded streams).
The folder holds config.json, model.safetensors, the CLIP BPE tokenizer built from the caption
vocabulary, preprocessor_config.json and train_metrics.json.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch

from training import quality
from training.losses import SiglipHead, clip_logits, clip_loss
from training.scenes import captions, render, sample_scene, vocabulary_corpus

IMAGE_SIZE = 48
MEAN = np.array([0.48145466, 0.4578275, 0.40821073], np.float32)  # OpenAI CLIP's, as the processor uses
STD = np.array([0.26862954, 0.26130258, 0.27577711], np.float32)


def model_config(vocab_size: int, bos: int, eos: int) -> dict:
    text = dict(
        vocab_size=vocab_size, hidden_size=128, intermediate_size=512, projection_dim=128, num_hidden_layers=2,
        num_attention_heads=4, max_position_embeddings=32, hidden_act="quick_gelu",
        bos_token_id=bos, eos_token_id=eos, pad_token_id=eos,
    )  # fmt: skip
    vision = dict(
        hidden_size=128, intermediate_size=512, projection_dim=128, num_hidden_layers=3, num_attention_heads=4,
        image_size=IMAGE_SIZE, patch_size=8, hidden_act="quick_gelu",
    )  # fmt: skip
    return dict(
        text_config=text, vision_config=vision, projection_dim=128, logit_scale_init_value=math.log(1 / 0.07)
    )


def to_pixels(images: list) -> torch.Tensor:
    """PIL images already at IMAGE_SIZE -> (N, 3, H, W) normalised as CLIPImageProcessor does."""
    arr = (np.stack([np.asarray(im, np.float32) for im in images]) / 255.0 - MEAN) / STD  # (N, H, W, 3)
    return torch.from_numpy(arr.transpose(0, 3, 1, 2).copy())


def build_tokenizer(out: Path):
    from transformers import CLIPTokenizerFast

    from converters.build_tokenizer import build_clip_bpe_tokenizer

    build_clip_bpe_tokenizer(vocabulary_corpus(), out, vocab_size=1000, model_max_length=32)
    return CLIPTokenizerFast.from_pretrained(str(out))


def save_processor(out: Path) -> None:
    from transformers import CLIPImageProcessor

    CLIPImageProcessor(
        size={"shortest_edge": IMAGE_SIZE}, crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE}
    ).save_pretrained(str(out))


def batch(rng: np.random.Generator, size: int, distinct: bool = False) -> tuple[list, list[str]]:
    """`size` rendered scenes and one caption each; `distinct` keeps one scene per set of objects.

    Two scenes with the same objects would be false negatives for each other under InfoNCE.
    """
    scenes, seen = [], set()
    while len(scenes) < size:
        s = sample_scene(rng)
        key = tuple(sorted((x.colour, x.kind) for x in s.shapes))
        if distinct and key in seen:
            continue
        seen.add(key)
        scenes.append(s)
    texts = []
    for s in scenes:
        options = captions(s)
        texts.append(options[int(rng.integers(len(options)))])
    return [render(s, IMAGE_SIZE) for s in scenes], texts


@torch.no_grad()
def evaluate(model, tok) -> quality.Quality:
    model.eval()

    def images(scenes):
        return torch.cat(
            [_as_tensor(model.get_image_features(pixel_values=to_pixels([render(s, IMAGE_SIZE) for s in scenes[i : i + 256]])))
             for i in range(0, len(scenes), 256)]
        ).numpy()  # fmt: skip

    def texts(t):
        enc = tok(t, padding=True, return_tensors="pt")
        return _as_tensor(
            model.get_text_features(input_ids=enc.input_ids, attention_mask=enc.attention_mask)
        ).numpy()

    def norm(x):
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    single, gallery = quality.heldout_single(), quality.heldout_gallery()
    top1 = quality.zero_shot_top1(norm(images(single)), single, norm(texts(quality.prompt_texts())))
    p10, n = quality.precision_at_k(norm(images(gallery)), gallery, norm(texts(quality.query_texts())))
    model.train()
    return quality.Quality(top1, p10, n)


def _as_tensor(x) -> torch.Tensor:
    # transformers 5 may wrap projected features in an output object; take the pooled tensor.
    return x if isinstance(x, torch.Tensor) else x.pooler_output


def train(
    seed: int,
    out: Path,
    steps: int,
    batch_size: int,
    lr: float,
    loss: str,
    log_every: int,
    distinct: bool = False,
) -> dict:
    from transformers import CLIPConfig, CLIPModel

    torch.set_num_threads(2)
    torch.manual_seed(seed)
    out.mkdir(parents=True, exist_ok=True)
    tok = build_tokenizer(out)
    vocab = tok.get_vocab()
    cfg = CLIPConfig(**model_config(len(vocab), vocab["<|startoftext|>"], vocab["<|endoftext|>"]))
    model = CLIPModel(cfg)
    head = SiglipHead() if loss == "siglip" else None
    params = list(model.parameters()) + (list(head.parameters()) if head else [])
    decay = [p for p in params if p.ndim >= 2]
    no_decay = [p for p in params if p.ndim < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}], lr=lr
    )
    warmup = max(1, steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(1.0, s / steps)))
    )
    cache: dict[str, list[int]] = {}
    start, history = time.time(), []
    for step in range(steps):
        rng = np.random.default_rng([seed, step])  # one stream per step: resumable and order-independent
        imgs, texts = batch(rng, batch_size, distinct)
        for t in texts:
            if t not in cache:
                cache[t] = tok(t).input_ids
        width = max(len(cache[t]) for t in texts)
        ids = torch.full((len(texts), width), tok.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(texts), width), dtype=torch.long)
        for i, t in enumerate(texts):
            ids[i, : len(cache[t])] = torch.tensor(cache[t])
            mask[i, : len(cache[t])] = 1
        img_emb = _as_tensor(model.get_image_features(pixel_values=to_pixels(imgs)))
        txt_emb = _as_tensor(model.get_text_features(input_ids=ids, attention_mask=mask))
        if head is None:
            value = clip_loss(clip_logits(img_emb, txt_emb, model.logit_scale.clamp(max=math.log(100)).exp()))
        else:
            value = head(img_emb, txt_emb)
        opt.zero_grad(set_to_none=True)
        value.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        if step % log_every == 0 or step == steps - 1:
            entry = {"step": step, "loss": round(value.item(), 4), "scale": round(model.logit_scale.exp().item(), 2),
                     "elapsed_s": round(time.time() - start, 1)}  # fmt: skip
            history.append(entry)
            print(json.dumps(entry), flush=True)
    train_s = time.time() - start
    model.save_pretrained(str(out))
    save_processor(out)
    q = evaluate(model, tok)
    metrics = {
        "seed": seed, "steps": steps, "batch_size": batch_size, "lr": lr, "loss": loss, "distinct": distinct,
        "train_seconds": round(train_s, 1), "final_loss": history[-1]["loss"],
        "logit_scale": round(model.logit_scale.exp().item(), 3),
        "zero_shot_top1": round(q.zero_shot_top1, 4), "precision_at_10": round(q.precision_at_10, 4),
        "n_queries": q.n_queries, "torch": torch.__version__,
    }  # fmt: skip
    (out / "train_metrics.json").write_text(json.dumps({"metrics": metrics, "history": history}, indent=1))
    print(json.dumps(metrics), flush=True)
    return metrics


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--loss", choices=["clip", "siglip"], default="clip")
    p.add_argument("--log-every", type=int, default=10)
    p.add_argument(
        "--distinct-batches", action="store_true", help="no two scenes with the same objects per batch"
    )
    a = p.parse_args(argv)
    train(a.seed, a.out, a.steps, a.batch_size, a.lr, a.loss, a.log_every, a.distinct_batches)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
