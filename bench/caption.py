"""Caption decode benchmark: per-token cost at 32 vs 256 generated tokens, MLX vs torch, same random LLaVA.

    python bench/caption.py [--preset tiny-siglip-qwen2] [--repeats 3] [--json]

Per-token decode cost at N tokens = (time(N) - time(1)) / (N - 1): generating one token is the prefill
(vision tower + prompt), so the difference is pure decode. EOS is switched off so every run makes exactly
N tokens. With a working KV cache a step costs about the same at position 256 as at 32, so the ratio
cost(256) / cost(32) must stay <= 1.5 (re-running the whole prefix each step would make it ~5x or more).
Exit status 1 when it does not.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout: tests.builders is not installed

import mlx_models  # noqa: E402  (prepares the MLX runtime)

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

MAX_RATIO = 1.5
# Wider than the test presets so decode does real work, still random and offline.
SMALL = {
    "vision": {"hidden_size": 128, "intermediate_size": 512, "num_hidden_layers": 4, "num_attention_heads": 4,
               "image_size": 64, "patch_size": 8},
    "text": {"hidden_size": 256, "intermediate_size": 1024, "num_hidden_layers": 4, "num_attention_heads": 4,
             "num_key_value_heads": 2, "max_position_embeddings": 1024},
}  # fmt: skip
PROMPT = "Describe this image in one sentence."


def _median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def per_token_costs(run, lengths: list[int], repeats: int) -> dict[int, float]:
    """{N: seconds per decoded token when generating N tokens}; `run(n)` generates exactly n tokens."""
    run(4)  # warm-up: compile kernels, fill caches
    prefill = _median_time(lambda: run(1), repeats)
    return {n: (_median_time(lambda n=n: run(n), repeats) - prefill) / (n - 1) for n in lengths}


def bench_mlx(folder: Path, image: Image.Image, lengths: list[int], repeats: int) -> dict[int, float]:
    cap = mlx_models.load(folder)

    def run(n: int) -> None:
        out = cap.generate(image, PROMPT, max_tokens=n, eos_token_ids=())
        assert len(out) == n

    return per_token_costs(run, lengths, repeats)


def bench_torch(folder: Path, image: Image.Image, lengths: list[int], repeats: int) -> dict[int, float]:
    import torch
    from transformers import AutoProcessor, LlavaForConditionalGeneration

    torch.set_num_threads(max(1, torch.get_num_threads()))
    model = LlavaForConditionalGeneration.from_pretrained(str(folder), dtype=torch.float32).eval()
    model.generation_config.eos_token_id = None  # exactly n tokens, like the MLX run
    proc = AutoProcessor.from_pretrained(str(folder))
    msgs = [
        {"role": "user", "content": [{"type": "image", "image": image}, {"type": "text", "text": PROMPT}]}
    ]
    inputs = proc.apply_chat_template(
        msgs, add_generation_prompt=True, tokenize=True, return_dict=True, return_tensors="pt"
    )

    def run(n: int) -> None:
        with torch.no_grad():
            out = model.generate(**inputs, max_new_tokens=n, do_sample=False)
        assert out.shape[1] - inputs["input_ids"].shape[1] == n

    return per_token_costs(run, lengths, repeats)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="tiny-siglip-qwen2", choices=("tiny-siglip-qwen2", "tiny-clip-llama"))
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--no-torch", action="store_true", help="skip the torch comparison")
    p.add_argument("--json", action="store_true", help="also print one JSON line with the numbers")
    args = p.parse_args(argv)
    lengths = [32, 256]

    from tests.builders.llava import make_llava_checkpoint

    image = Image.fromarray((np.random.default_rng(0).random((120, 160, 3)) * 255).astype(np.uint8))
    with tempfile.TemporaryDirectory() as tmp:
        folder = make_llava_checkpoint(Path(tmp) / "hf", preset=args.preset, **SMALL)
        results = {"mlx": bench_mlx(folder, image, lengths, args.repeats)}
        if not args.no_torch:
            results["torch"] = bench_torch(folder, image, lengths, args.repeats)

    device = mlx_models.runtime.device_name()
    print(
        f"LLaVA decode, {args.preset} widened (text 256 x 4 layers, vision 128 x 4), mlx on {device}, torch on cpu"
    )
    print(f"{'backend':8} {'ms/token @32':>14} {'ms/token @256':>14} {'ratio':>7}")
    ratio = {}
    for name, costs in results.items():
        ratio[name] = costs[256] / costs[32]
        print(f"{name:8} {costs[32] * 1e3:14.3f} {costs[256] * 1e3:14.3f} {ratio[name]:7.2f}")
    if "torch" in results:
        for n in lengths:
            print(
                f"mlx vs torch @{n}: {results['torch'][n] / results['mlx'][n]:.2f}x (torch time / mlx time)"
            )
    ok = ratio["mlx"] <= MAX_RATIO
    print(
        f"KV cache check: mlx ratio {ratio['mlx']:.2f} {'<=' if ok else '>'} {MAX_RATIO}: {'PASS' if ok else 'FAIL'}"
    )
    if args.json:
        print(
            json.dumps(
                {k: {str(n): v for n, v in c.items()} for k, c in results.items()}
                | {"ratio": ratio, "pass": ok}
            )
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
