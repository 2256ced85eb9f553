"""A small deterministic stand-in for a caption model (LLaVA), for caption-job tests."""

from __future__ import annotations

from PIL import Image

from app.core.captions_backend import CaptionResult
from app.core.errors import BackendError


class FakeCaptioner:
    """Names the image's mean colour; fails (as a model would) on images listed in `fail_on_sizes`."""

    def __init__(self, model_id: str = "fake-cap", fail_on_sizes=()) -> None:
        self.model_id = model_id
        self.fail_on_sizes = set(fail_on_sizes)
        self.calls: list[tuple[int, int]] = []

    def caption(self, image: Image.Image, prompt: str, max_tokens: int, temperature: float = 0.0, top_p=1.0):
        self.calls.append(image.size)
        if image.size in self.fail_on_sizes:
            raise BackendError("the model refused this image")
        r, g, b = (int(c) for c in image.resize((1, 1)).getpixel((0, 0)))
        return CaptionResult(f"colour {r} {g} {b}", [r, g, b])
