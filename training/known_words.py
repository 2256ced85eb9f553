"""Declare a model folder's closed vocabulary: every word of the training captions, in its config.json,
and the bundled tag vocabulary of the same words (resources/tags/demo.txt) that its tags and calibration use.

    python -m training.known_words resources/models/fovea-demo-clip [--dry-run]

The demo tokenizer is a byte-level BPE, so an unseen word ("dog") does not map to an unknown token:
it is spelled out in letter tokens the model never trained on. The app reads the list
(config.json "fovea"/"known_words", via app/core/vocabulary.py) to say which query words the model
cannot know, instead of returning confident nonsense for them.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

from training.scenes import vocabulary_corpus


def known_words() -> list[str]:
    """Every word the demo captions and prompts use, sorted (the same word split as the app's check)."""
    return sorted({w.lower() for line in vocabulary_corpus() for w in re.findall(r"[^\W_]+", line)})


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("folder", type=Path)
    p.add_argument("--dry-run", action="store_true", help="print, do not write config.json")
    a = p.parse_args(argv)
    words = known_words()
    print(f"{len(words)} words: {' '.join(words)}")
    if not a.dry_run:
        path = a.folder / "config.json"
        cfg = json.loads(path.read_text())
        cfg.setdefault("fovea", {})["known_words"] = words
        cfg["fovea"]["vocabulary"] = "demo"  # app.core.tag_vocab.vocabulary_for_model: wherever the folder is
        path.write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
