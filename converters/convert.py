"""Hugging Face checkpoint folder -> MLX model folder: load, sanitize, check, cast, quantize, save, verify.

Usage: python -m converters.convert SRC DST [--dtype float32|float16|bfloat16] [--quantize 8|4]
                                           [--verify] [--allow-pickle]

The output folder holds `model.safetensors` (sanitised names and layouts, possibly quantized),
`config.json` (the HF config plus `quantization` and a `fovea` provenance entry), and the
tokenizer and image-processor files. It is written beside DST and renamed into place at the end,
so a refusal or a failed verification leaves nothing half-written.
"""

from __future__ import annotations  # noqa: I001  (mlx is imported after mlx_models, on purpose)

import argparse
import json
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from collections.abc import Callable
from typing import Any

import mlx_models  # noqa: F401  (prepares the MLX runtime before mlx is imported)
from mlx_models import registry
from mlx_models.common.config import read_json
from mlx_models.common.errors import ModelError, WeightsError
from mlx_models.common.quant import ALLOWED_BITS, GROUP_SIZE_FOR_BITS, quantizable, quantize_model
from mlx_models.common.weights import PICKLE_SUFFIXES, check_weights, load_safetensors, shard_names

import mlx.core as mx  # after mlx_models, which prepares the runtime
from mlx.utils import tree_flatten

from .verify import VerifyReport, verify as verify_folder

CONVERTER_VERSION = "1"
DTYPES = {"float32": mx.float32, "float16": mx.float16, "bfloat16": mx.bfloat16}
# model_types this converter handles; the family module comes from mlx_models.registry.
CONVERTIBLE = ("clip", "siglip")  # llava goes through converters.llava


class ConvertError(ModelError):
    """A conversion the converter refuses (unknown type, existing output, pickle, failed check)."""


@dataclass(frozen=True)
class ConvertResult:
    """What was written: where, which model, in which precision, and the verification if asked."""

    dst: Path
    model_type: str
    dtype: str
    quantization: dict[str, int] | None
    n_tensors: int
    n_bytes: int  # size of model.safetensors
    report: VerifyReport | None


def family_module(model_type: str) -> ModuleType:
    """The `mlx_models` family that builds and sanitizes `model_type`."""
    if model_type not in CONVERTIBLE:
        raise ConvertError(
            f"model_type {model_type!r} cannot be converted (supported: {', '.join(CONVERTIBLE + ('llava',))})"
        )
    return registry.family_module(model_type)


def _pickle_files(src: Path) -> list[Path]:
    index = src / "pytorch_model.bin.index.json"
    if index.exists():
        return [src / n for n in shard_names(index)]
    return sorted(p for p in src.iterdir() if p.suffix in PICKLE_SUFFIXES)


def _load_pickle(files: list[Path]) -> dict[str, mx.array]:
    """Tensors of PyTorch pickle files, read with `weights_only=True` (no arbitrary code runs)."""
    import torch

    weights: dict[str, mx.array] = {}
    for f in files:
        try:
            obj = torch.load(f, map_location="cpu", weights_only=True)
        except Exception as e:  # torch raises UnpicklingError/RuntimeError for refused or corrupt files
            raise WeightsError(
                f"{f}: not a loadable weights-only PyTorch file ({str(e).splitlines()[0]})"
            ) from e
        if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
            obj = obj["state_dict"]
        if not isinstance(obj, dict):
            raise WeightsError(f"{f}: expected a state dict of tensors, got {type(obj).__name__}")
        for k, t in obj.items():
            if not isinstance(t, torch.Tensor):
                continue
            t = t.detach().cpu()
            # numpy has no bfloat16: go through float32 and cast back.
            arr = (
                mx.array(t.float().numpy()).astype(mx.bfloat16)
                if t.dtype == torch.bfloat16
                else mx.array(t.numpy())
            )
            weights[k] = arr
    return weights


def read_weights(src: Path, allow_pickle: bool) -> dict[str, mx.array]:
    """Safetensors when present; PyTorch pickle only when explicitly allowed."""
    if any(src.glob("*.safetensors")):
        return load_safetensors(src)
    pickles = _pickle_files(src)
    if not pickles:
        raise WeightsError(f"{src}: no .safetensors or PyTorch weight files")
    if not allow_pickle:
        raise ConvertError(
            f"{src}: only pickle weights ({pickles[0].name}); pickle can run code when loaded, "
            "pass --allow-pickle to read it with torch.load(weights_only=True)"
        )
    return _load_pickle(pickles)


def _check_destination(dst: Path) -> None:
    if dst.exists() and (not dst.is_dir() or any(dst.iterdir())):
        raise ConvertError(f"{dst}: already exists and is not empty; refusing to overwrite")


def _write_folder(
    out: Path, src: Path, family: ModuleType, cfg: dict[str, Any], weights: dict[str, mx.array]
) -> None:
    mx.save_safetensors(str(out / "model.safetensors"), weights, metadata={"format": "mlx"})
    (out / "config.json").write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    for name in family.PROCESSOR_FILES:
        if (src / name).is_file():
            shutil.copy2(src / name, out / name)
    family.prepare_tokenizer(src, out)
    # Keep the original tokenizer files too, so transformers (the torch backend) can read the folder.
    for name in family.TOKENIZER_FILES:
        if (src / name).is_file() and not (out / name).exists():
            shutil.copy2(src / name, out / name)


def ship(dst: Path, write: Callable[[Path], None], check: Callable[[Path], Any] | None = None) -> Any:
    """Write a model folder beside `dst`, check it, then move it into place; a failure leaves nothing.

    `check` returns a report with `.passed` and `.reason` (or None): a failed check ships nothing.
    """
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dst.name}.", suffix=".partial", dir=dst.parent))
    try:
        write(tmp)
        report = check(tmp) if check else None
        if report is not None and not report.passed:
            raise ConvertError(f"verification failed, not shipping {dst}: {report.reason}")
        _check_destination(dst)  # again: something may have appeared while we worked
        if dst.exists():
            dst.rmdir()
        os.rename(tmp, dst)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return report


def convert(
    src: Path,
    dst: Path,
    *,
    dtype: str = "float32",
    quantize: int | None = None,
    allow_pickle: bool = False,
    verify: bool = False,
) -> ConvertResult:
    """Convert the HF folder `src` into the MLX folder `dst`; raises `ModelError` with a one-line reason."""
    src, dst = Path(src), Path(dst)
    if dtype not in DTYPES:
        raise ConvertError(f"dtype {dtype!r} is not supported (choose from {', '.join(DTYPES)})")
    if quantize is not None and quantize not in ALLOWED_BITS:
        raise ConvertError(f"quantization to {quantize} bits is not supported (choose from {ALLOWED_BITS})")
    _check_destination(dst)
    cfg = read_json(src / "config.json")
    if cfg.get("model_type") == "llava":  # a composite of a vision family and an mlx-lm language model
        from .llava import convert_llava

        return convert_llava(
            src, dst, dtype=dtype, quantize=quantize, allow_pickle=allow_pickle, verify=verify
        )
    family = family_module(cfg.get("model_type"))
    family.ModelConfig.from_dict(cfg)  # refuses an absurd config before any weight is read

    weights = family.sanitize(read_weights(src, allow_pickle))
    model = family.build_model(cfg)
    check_weights(model, weights, src)
    target = DTYPES[dtype]
    weights = {k: v.astype(target) if mx.issubdtype(v.dtype, mx.floating) else v for k, v in weights.items()}
    model.load_weights(list(weights.items()))

    out_cfg = {k: v for k, v in cfg.items() if k not in ("quantization", "fovea")}
    quantization = None
    if quantize is not None:
        group = GROUP_SIZE_FOR_BITS[quantize]
        modules = [m for _, m in model.named_modules() if quantizable(m, group)]
        if not modules:
            raise ConvertError(
                f"no linear layer has an input width divisible by {group}; cannot quantize this model"
            )
        quantization = quantize_model(model, quantize, group)
        out_cfg["quantization"] = quantization
    out_cfg["fovea"] = {"source": str(src.resolve()), "dtype": dtype, "converter_version": CONVERTER_VERSION}
    tensors = dict(tree_flatten(model.parameters()))
    mx.eval(tensors)

    report = ship(
        dst,
        lambda tmp: _write_folder(tmp, src, family, out_cfg, tensors),
        (lambda tmp: verify_folder(src, tmp)) if verify else None,
    )
    n_bytes = (dst / "model.safetensors").stat().st_size
    return ConvertResult(dst, cfg["model_type"], dtype, quantization, len(tensors), n_bytes, report)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry: exit 0 on success, 1 with a one-line reason on failure, 2 on bad usage."""
    p = argparse.ArgumentParser(prog="python -m converters.convert", description=__doc__.splitlines()[0])
    p.add_argument("src", type=Path, help="Hugging Face model folder (config.json + weights + tokenizer)")
    p.add_argument("dst", type=Path, help="MLX model folder to create (must not exist or be empty)")
    p.add_argument("--dtype", choices=tuple(DTYPES), default="float32")
    p.add_argument("--quantize", type=int, choices=ALLOWED_BITS, default=None, help="bits for linear layers")
    p.add_argument(
        "--verify", action="store_true", help="compare against transformers; refuse to ship on mismatch"
    )
    p.add_argument("--allow-pickle", action="store_true", help="read .bin/.pt weights (weights_only=True)")
    args = p.parse_args(argv)
    try:
        res = convert(
            args.src, args.dst, dtype=args.dtype, quantize=args.quantize,
            allow_pickle=args.allow_pickle, verify=args.verify,
        )  # fmt: skip
    except ModelError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    q = f", {res.quantization['bits']}-bit" if res.quantization else ""
    print(
        f"wrote {res.dst} ({res.model_type}, {res.dtype}{q}, {res.n_tensors} tensors, {res.n_bytes / 1e6:.1f} MB)"
    )
    if res.report is not None:
        print(f"verified: {res.report.summary}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
