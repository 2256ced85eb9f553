"""Converters from Hugging Face checkpoints to Fovea's MLX model folders, and their verification.

`converters.convert.convert(src, dst, ...)` writes an MLX folder (`python -m converters.convert`);
`converters.verify.verify(src, dst)` compares it with transformers. Submodules are not imported
here, so `python -m converters.convert` runs cleanly; torch and transformers are imported only
where pickle weights or verification need them.
"""
