"""mlx-lm's submodules without mlx-lm's package `__init__` (which imports transformers).

LLaVA needs three small pieces of mlx-lm: the language-model architectures (`mlx_lm.models.qwen2`, ...),
the KV cache and the sampler. Importing any of them the ordinary way first runs `mlx_lm/__init__.py`,
which pulls in `mlx_lm.convert`/`utils` and, through them, transformers: the packaged app leaves
transformers out, so captions failed there with "No module named 'transformers'".

`lm_module(name)` registers a placeholder `mlx_lm` package whose `__path__` is the real one, so the
submodules import from their own files and nothing else of mlx-lm runs. The placeholder runs the real
`__init__` on the first attribute it lacks (`mlx_lm.load`, ...), so code that wants the whole package
still gets it where transformers is installed.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import threading
import types

PACKAGE = "mlx_lm"
_LOCK = threading.Lock()  # the GUI may build a captioner on a worker while another thread imports


class _DeferredPackage(types.ModuleType):
    """`mlx_lm` with its `__init__` deferred until an attribute it lacks is asked for."""

    def __getattr__(self, name: str) -> object:
        if name.startswith("__") or self.__dict__.get("_fovea_init_done"):
            raise AttributeError(f"module {PACKAGE!r} has no attribute {name!r}")
        self.__dict__["_fovea_init_done"] = True
        self.__spec__.loader.exec_module(self)  # the real __init__, into this same module object
        return getattr(self, name)


def _install_placeholder() -> None:
    spec = importlib.util.find_spec(PACKAGE)  # finds the package without executing it
    if spec is None or spec.submodule_search_locations is None:
        raise ImportError(f"No module named {PACKAGE!r} (pip install mlx-lm)", name=PACKAGE)
    pkg = _DeferredPackage(PACKAGE)
    pkg.__spec__ = spec
    pkg.__path__ = list(spec.submodule_search_locations)
    pkg.__file__ = spec.origin
    pkg.__package__ = PACKAGE
    sys.modules[PACKAGE] = pkg


def lm_module(name: str) -> types.ModuleType:
    """`mlx_lm.<name>` (e.g. "models.qwen2", "models.cache", "sample_utils") without mlx-lm's `__init__`."""
    with _LOCK:
        if PACKAGE not in sys.modules:
            _install_placeholder()
    return importlib.import_module(f"{PACKAGE}.{name}")
