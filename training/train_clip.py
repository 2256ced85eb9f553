"""Train the bundled demo CLIP on generated scenes and save it as a Hugging Face CLIPModel folder.

    python -m training.train_clip --seed 0 --out /tmp/fovea-demo-hf   # defaults = the bundled model's recipe

Deterministic from the seed on one machine (fixed thread count, data drawn from seeded streams).
The folder holds config.json, model.safetensors, the CLIP BPE tokenizer built from the caption
vocabulary, preprocessor_config.json and train_metrics.json.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from training import quality
from training.losses import SiglipHead, clip_logits, clip_loss, multi_positive_loss
from training.scenes import (
    Scene,
    background_prompts,
    captions,
    class_prompts,
    render,
    sample_scene,
    truths,
    vocabulary_corpus,
)

IMAGE_SIZE = 64
TEXT_WIDTH = 20  # every caption is padded to this many tokens (the longest is 17), so shapes never change
PATCH_SIZE = 8
CLASS_TEMPLATES = ("{article} {colour} {shape}", "a photo of {article} {colour} {shape}")
MEAN = np.array([0.48145466, 0.4578275, 0.40821073], np.float32)  # OpenAI CLIP's, as the processor uses
STD = np.array([0.26862954, 0.26130258, 0.27577711], np.float32)


def model_config(
    vocab_size: int, bos: int, eos: int, image_size: int = IMAGE_SIZE, patch_size: int = PATCH_SIZE
) -> dict:
    text = dict(
        vocab_size=vocab_size, hidden_size=128, intermediate_size=512, projection_dim=128, num_hidden_layers=2,
        num_attention_heads=4, max_position_embeddings=32, hidden_act="quick_gelu",
        bos_token_id=bos, eos_token_id=eos, pad_token_id=eos,
    )  # fmt: skip
    vision = dict(
        hidden_size=128, intermediate_size=512, projection_dim=128, num_hidden_layers=3, num_attention_heads=4,
        image_size=image_size, patch_size=patch_size, hidden_act="quick_gelu",
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


def save_processor(out: Path, size: int = IMAGE_SIZE) -> None:
    from transformers import CLIPImageProcessor

    CLIPImageProcessor(
        size={"shortest_edge": size}, crop_size={"height": size, "width": size}
    ).save_pretrained(str(out))


def batch(
    rng: np.random.Generator,
    size: int,
    distinct: bool = False,
    image_size: int = IMAGE_SIZE,
    single_share: float | None = None,
    empty_share: float = 0.0,
) -> tuple[list, list[str], list[Scene]]:
    """`size` rendered scenes and one caption each; `distinct` keeps one scene per set of objects.

    Two scenes with the same objects would be false negatives for each other under InfoNCE.
    `single_share` overrides the scene generator's share of one-shape scenes (clean shape signal);
    `empty_share` of the scenes are empty grounds (what "no shape here" looks like).
    """
    scenes, seen = [], set()
    while len(scenes) < size:
        n = None
        if single_share is not None:
            n = 1 if rng.random() < single_share else int(rng.choice([2, 3], p=[0.6, 0.4]))
        if empty_share and rng.random() < empty_share:
            n = 0
        s = sample_scene(rng, n)
        key = tuple(sorted((x.colour, x.kind) for x in s.shapes)) or ("empty", s.background)
        if distinct and key in seen:
            continue
        seen.add(key)
        scenes.append(s)
    texts = []
    for s in scenes:
        options = captions(s)
        texts.append(options[int(rng.integers(len(options)))])
    return [render(s, image_size) for s in scenes], texts, scenes


def prompt_targets(scene: Scene, captions_: list[str], columns: list[tuple[str, str]]) -> list[bool]:
    """Which batch captions and which prompt columns are true of `scene` (one row of the target matrix)."""
    truth = truths(scene)
    own = [c in truth for c in captions_]
    return own + [
        scene.contains(a, b) if a else (not scene.shapes and scene.background == b) for a, b in columns
    ]


@torch.no_grad()
def evaluate(model, tok, image_size: int = IMAGE_SIZE) -> quality.Quality:
    model.eval()

    def images(scenes):
        return torch.cat(
            [_as_tensor(model.get_image_features(pixel_values=to_pixels([render(s, image_size) for s in scenes[i : i + 256]])))
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


@dataclass(frozen=True)
class Recipe:
    """Everything a run depends on besides the seed; the defaults are the bundled model's recipe."""

    steps: int = 2400
    batch_size: int = 96
    lr: float = 2e-3
    loss: str = "multi"  # "multi": captions plus every class and background prompt as columns
    distinct: bool = True
    image_size: int = IMAGE_SIZE
    patch_size: int = PATCH_SIZE
    single_share: float | None = 0.7  # None: the scene generator's own mix (40% one-shape scenes)
    threads: int = 2
    empty_share: float = 0.04  # share of empty-ground scenes
    compile: bool = True  # torch.compile the forward pass (needs a C compiler)
    init: str | None = (
        None  # continue from this CLIP folder's weights (HF or converted MLX) instead of random ones
    )


def load_init(model, folder: Path, vocab: dict[str, int], patch_size: int) -> None:
    """Load a CLIP folder's weights (an HF folder, or one converted for MLX) into `model`, in place.

    The tokenizer built for this run must be the folder's, or its token embeddings would mean other words.
    """
    from safetensors.torch import load_file

    theirs = json.loads((folder / "vocab.json").read_text(encoding="utf-8"))
    if theirs != vocab:
        raise ValueError(f"{folder}: its tokenizer differs from the one built from today's captions")
    weights = load_file(str(folder / "model.safetensors"))
    key = "vision_model.embeddings.patch_embedding.weight"
    if tuple(weights[key].shape[1:]) != (3, patch_size, patch_size):
        weights[key] = weights[key].permute(
            0, 3, 1, 2
        )  # MLX conv [out, kh, kw, in] -> PyTorch [out, in, kh, kw]
    model.load_state_dict(weights, strict=True)


def train(seed: int, out: Path, recipe: Recipe, log_every: int = 10, eval_every: int = 0) -> dict:
    """Train, save the HF folder in `out`, evaluate; returns the final metrics."""
    before = torch.are_deterministic_algorithms_enabled()
    # Without it a compiled run is not bitwise repeatable (unordered atomic scatter-adds, most likely).
    torch.use_deterministic_algorithms(True)
    try:
        return _train(seed, out, recipe, log_every, eval_every)
    finally:
        torch.use_deterministic_algorithms(before)


def _train(seed: int, out: Path, recipe: Recipe, log_every: int, eval_every: int) -> dict:
    from transformers import CLIPConfig, CLIPModel

    r = recipe
    torch.set_num_threads(r.threads)
    torch.manual_seed(seed)
    out.mkdir(parents=True, exist_ok=True)
    tok = build_tokenizer(out)
    vocab = tok.get_vocab()
    cfg = CLIPConfig(
        **model_config(
            len(vocab), vocab["<|startoftext|>"], vocab["<|endoftext|>"], r.image_size, r.patch_size
        )
    )
    model = CLIPModel(cfg)
    if r.init is not None:
        load_init(model, Path(r.init), vocab, r.patch_size)
    head = SiglipHead() if r.loss == "siglip" else None
    params = list(model.parameters()) + (list(head.parameters()) if head else [])
    decay = [p for p in params if p.ndim >= 2]
    no_decay = [p for p in params if p.ndim < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}], lr=r.lr
    )
    steps = r.steps
    warmup = max(1, steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(1.0, s / steps)))
    )
    # Multi loss: every class prompt and every background prompt joins the batch's captions as a column.
    prompt_columns = [[*class_prompts(t).values(), *background_prompts(t).values()] for t in CLASS_TEMPLATES]
    column_truth = [
        *class_prompts(),
        *(("", b) for b in background_prompts()),
    ]  # (colour, kind) or ("", ground)

    def embed(
        pixels: torch.Tensor, ids: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        image = _as_tensor(model.get_image_features(pixel_values=pixels))
        return image, _as_tensor(model.get_text_features(input_ids=ids, attention_mask=mask))

    if r.compile:  # fused CPU kernels: steps about 15% faster here; shapes are fixed, so it compiles once
        embed = torch.compile(embed)
    cache: dict[str, list[int]] = {}
    start, history = time.time(), []
    for step in range(steps):
        rng = np.random.default_rng([seed, step])  # one stream per step: resumable and order-independent
        imgs, texts, scenes = batch(
            rng, r.batch_size, r.distinct, r.image_size, r.single_share, r.empty_share
        )
        if r.loss == "multi":
            texts = texts + list(prompt_columns[int(rng.integers(len(prompt_columns)))])
        for t in texts:
            if t not in cache:
                cache[t] = tok(t).input_ids
        width = TEXT_WIDTH if r.compile else max(len(cache[t]) for t in texts)
        if any(len(cache[t]) > width for t in texts):
            raise ValueError(f"a caption is longer than {width} tokens: raise TEXT_WIDTH")
        ids = torch.full((len(texts), width), tok.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(texts), width), dtype=torch.long)
        for i, t in enumerate(texts):
            ids[i, : len(cache[t])] = torch.tensor(cache[t])
            mask[i, : len(cache[t])] = 1
        img_emb, txt_emb = embed(to_pixels(imgs), ids, mask)
        if r.loss == "multi":
            targets = torch.tensor([prompt_targets(sc, texts[: len(scenes)], column_truth) for sc in scenes])
            scale = model.logit_scale.clamp(max=math.log(100)).exp()
            value = multi_positive_loss(clip_logits(img_emb, txt_emb, scale), targets)
        elif head is None:
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
            if eval_every and step and step % eval_every == 0:
                q = evaluate(model, tok, r.image_size)  # progress only; costs time, so off by default
                entry.update(
                    zero_shot_top1=round(q.zero_shot_top1, 4), precision_at_10=round(q.precision_at_10, 4)
                )
            history.append(entry)
            print(json.dumps(entry), flush=True)
    train_s = time.time() - start
    model.save_pretrained(str(out))
    save_processor(out, r.image_size)
    q = evaluate(model, tok, r.image_size)
    metrics = {
        "seed": seed, **asdict(r),
        "train_seconds": round(train_s, 1), "final_loss": history[-1]["loss"],
        "logit_scale": round(model.logit_scale.exp().item(), 3),
        "zero_shot_top1": round(q.zero_shot_top1, 4), "precision_at_10": round(q.precision_at_10, 4),
        "n_queries": q.n_queries, "torch": torch.__version__,
    }  # fmt: skip
    (out / "train_metrics.json").write_text(json.dumps({"metrics": metrics, "history": history}, indent=1))
    print(json.dumps(metrics), flush=True)
    return metrics


def main(argv: list[str] | None = None) -> int:
    d = Recipe()
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--steps", type=int, default=d.steps)
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--loss", choices=["clip", "siglip", "multi"], default=d.loss)
    p.add_argument("--image-size", type=int, default=d.image_size)
    p.add_argument("--patch-size", type=int, default=d.patch_size)
    p.add_argument("--single-share", type=float, default=d.single_share, help="share of one-shape scenes")
    p.add_argument("--threads", type=int, default=d.threads)
    p.add_argument("--empty-share", type=float, default=d.empty_share, help="share of empty-ground scenes")
    p.add_argument(
        "--compile", action=argparse.BooleanOptionalAction, default=d.compile, help="torch.compile"
    )
    p.add_argument("--log-every", type=int, default=10)
    p.add_argument("--eval-every", type=int, default=0, help="held-out metrics every N steps (slow)")
    p.add_argument(
        "--distinct-batches", action=argparse.BooleanOptionalAction, default=d.distinct,
        help="no two scenes with the same objects per batch",
    )  # fmt: skip
    p.add_argument("--init", type=Path, help="continue from this CLIP folder's weights (HF or converted MLX)")
    a = p.parse_args(argv)
    fields = {f: getattr(a, f) for f in Recipe.__dataclass_fields__ if f not in ("distinct", "init")}
    recipe = Recipe(**fields, distinct=a.distinct_batches, init=str(a.init) if a.init else None)
    train(a.seed, a.out, recipe, a.log_every, a.eval_every)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
