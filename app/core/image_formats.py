"""The file extensions Fovea treats as photos: plain constants, so a search can recognise an image path
without importing the decoders (Pillow's plugins, pillow-heif, pillow-jxl: app.core.decode)."""

from __future__ import annotations

HEIF_EXTENSIONS = frozenset({".heic", ".heif", ".hif"})
JXL_EXTENSIONS = frozenset({".jxl"})
# Camera RAW files LibRaw reads (rawpy): Adobe, Canon, Nikon, Sony, Olympus/OM, Panasonic, Fujifilm,
# Pentax, Samsung, Sigma, Hasselblad, Epson, Kodak, Minolta, Leaf/Mamiya, Phase One, Leica.
RAW_EXTENSIONS = frozenset(
    {".dng", ".cr2", ".cr3", ".crw", ".nef", ".nrw", ".arw", ".srf", ".sr2", ".orf", ".rw2", ".raf"}
    | {".pef", ".srw", ".x3f", ".3fr", ".fff", ".erf", ".kdc", ".dcr", ".mrw", ".mos", ".iiq", ".rwl"}
)
# Every name that says "photo": these are indexed or recorded with a reason, never silently skipped.
EXTENSIONS: frozenset[str] = frozenset(
    {".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".apng", ".webp", ".gif", ".tif", ".tiff", ".bmp", ".dib"}
    | {".avif", ".mpo", ".jp2", ".j2k", ".j2c", ".jpc", ".jpf", ".jpx"}
    | HEIF_EXTENSIONS
    | JXL_EXTENSIONS
    | RAW_EXTENSIONS
)

__all__ = ["EXTENSIONS", "HEIF_EXTENSIONS", "JXL_EXTENSIONS", "RAW_EXTENSIONS"]
