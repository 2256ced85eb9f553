"""Resizing a photo that was decoded reduced (JPEG draft, Pillow's `reduce`) on the full photo's pixel grid.

A reduced decode has ceil(side / k) pixels per side, so its aspect ratio drifts by up to one pixel: a
741x500 photo drafted at 1/2 is 371x250, whose shortest-edge resize is one pixel wider than the full
photo's, and its center crop lands one pixel off. The processors use `reduction` and `source_box` to
sample the reduced pixels where the full photo's resize would (the reference processes the full decode).
"""

from __future__ import annotations


def reduction(size: tuple[int, int], full_size: tuple[int, int] | None) -> int:
    """The whole factor k >= 2 that turned `full_size` into `size` (each side rounded up, as libjpeg's scaled
    decode and Pillow's `reduce` do), else 1: not reduced, or not by one whole factor on both sides."""
    if full_size is None or min(size) <= 0:
        return 1
    (w, h), (fw, fh) = size, full_size
    k = round(fw / w)
    return k if k >= 2 and -(-fw // k) == w and -(-fh // k) == h else 1


def source_box(
    region: tuple[int, int, int, int],
    resized: tuple[int, int],
    full_size: tuple[int, int],
    k: int,
    size: tuple[int, int],
) -> tuple[float, float, float, float]:
    """`region` (left, top, right, bottom) of the full photo resized to `resized` (w, h), as a box in the
    pixels of its `size` reduction by `k` (Pillow's `resize(box=...)`: fractional, within the image)."""
    sx, sy = full_size[0] / resized[0] / k, full_size[1] / resized[1] / k
    left, top, right, bottom = region
    return left * sx, top * sy, min(right * sx, size[0]), min(bottom * sy, size[1])
