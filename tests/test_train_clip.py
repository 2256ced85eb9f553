"""The demo-model trainer: its multi-positive targets tell the truth, and a short run saves a loadable CLIPModel."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from training.scenes import Scene, Shape, class_prompts  # noqa: E402
from training.train_clip import Recipe, prompt_targets, train  # noqa: E402


def _scene(*objects: tuple[str, str], background: str = "plain") -> Scene:
    shapes = tuple(
        Shape(kind, colour, "small", 0.2 + 0.3 * i, 0.5, 0.12, 0.0)
        for i, (colour, kind) in enumerate(objects)
    )
    return Scene(shapes, background, ((180, 180, 180), (150, 150, 150)), 0.0, 1)


def test_prompt_targets_mark_every_true_caption_and_prompt():
    busy = _scene(("red", "circle"), ("blue", "square"))
    lone = _scene(("red", "circle"))
    empty = _scene(background="striped")
    caps = [
        "a red circle and a blue square",
        "a scene with a red circle",
        "a red circle",
        "a striped background",
    ]
    columns = [("red", "circle"), ("blue", "square"), ("red", "square"), ("", "striped"), ("", "plain")]
    yes, no = True, False
    assert prompt_targets(busy, caps, columns) == [yes, yes, no, no, yes, yes, no, no, no]
    # A lone red circle is "a scene with a red circle" too, but not "a red circle and a blue square".
    assert prompt_targets(lone, caps, columns) == [no, yes, yes, no, yes, no, no, no, no]
    assert prompt_targets(empty, caps, columns) == [no, no, no, yes, no, no, no, yes, no]


@pytest.mark.slow
def test_a_short_run_saves_a_clip_checkpoint_that_transformers_loads(tmp_path):
    from transformers import CLIPModel, CLIPTokenizerFast

    recipe = Recipe(steps=3, batch_size=12, image_size=32, patch_size=8, compile=False, threads=1)
    metrics = train(7, tmp_path, recipe, log_every=1)
    assert not torch.are_deterministic_algorithms_enabled()  # the global switch is put back
    saved = json.loads((tmp_path / "train_metrics.json").read_text())
    assert saved["metrics"] == metrics and len(saved["history"]) == 3
    assert metrics["n_queries"] == len(class_prompts()) and 0.0 <= metrics["zero_shot_top1"] <= 1.0
    model = CLIPModel.from_pretrained(str(tmp_path))
    tok = CLIPTokenizerFast.from_pretrained(str(tmp_path))
    assert model.config.vision_config.image_size == 32
    assert tok("a red circle").input_ids[-1] == model.config.text_config.eos_token_id
    assert (tmp_path / "preprocessor_config.json").is_file()


@pytest.mark.slow
def test_the_same_seed_trains_the_same_weights(tmp_path):
    from safetensors.numpy import load_file

    recipe = Recipe(steps=2, batch_size=8, image_size=32, patch_size=8, compile=False, threads=1)

    def weights(seed: int, name: str) -> dict:
        train(seed, tmp_path / name, recipe)
        return load_file(str(tmp_path / name / "model.safetensors"))

    a, b, c = weights(3, "a"), weights(3, "b"), weights(4, "c")
    assert a.keys() == b.keys()
    assert all((a[k] == b[k]).all() for k in a)
    assert any((a[k] != c[k]).any() for k in a)  # and another seed does not


@pytest.mark.slow
def test_init_loads_an_hf_folder_and_its_mlx_conversion_alike(tmp_path):
    from transformers import CLIPConfig, CLIPModel

    from converters.convert import convert
    from training.train_clip import build_tokenizer, load_init, model_config

    recipe = Recipe(steps=2, batch_size=8, image_size=32, patch_size=8, compile=False, threads=1)
    train(5, tmp_path / "hf", recipe)
    convert(tmp_path / "hf", tmp_path / "mlx")
    trained = CLIPModel.from_pretrained(str(tmp_path / "hf")).state_dict()
    vocab = build_tokenizer(tmp_path / "tok").get_vocab()
    for folder in ("hf", "mlx"):  # the MLX folder holds the patch conv as [out, kh, kw, in]
        model = CLIPModel(CLIPConfig(**model_config(len(vocab), 0, 1, 32, 8)))
        load_init(model, tmp_path / folder, vocab, 8)
        assert all(torch.equal(v, trained[k]) for k, v in model.state_dict().items()), folder
    with pytest.raises(ValueError, match="tokenizer differs"):
        load_init(model, tmp_path / "mlx", {**vocab, "zebra</w>": len(vocab)}, 8)
