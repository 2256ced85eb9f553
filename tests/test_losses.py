"""The contrastive losses reproduce the seed's worked examples and agree with a plain-numpy reference."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from training.losses import (  # noqa: E402
    SiglipHead,
    clip_logits,
    clip_loss,
    multi_positive_loss,
    prompt_ensemble,
    siglip_logits,
    siglip_loss,
    siglip_pair_loss,
)

# The seed's 3x3 batch: image-to-text cosines (rows: images, columns: texts), matches on the diagonal.
SEED_COSINES = [[1.0, 0.12, 0.028], [0.142, 1.0, 0.132], [0.018, 0.118, 1.0]]


def _numpy_infonce(logits: np.ndarray) -> float:
    def ce(m: np.ndarray) -> float:
        m = m - m.max(axis=1, keepdims=True)
        return float(np.mean(np.log(np.exp(m).sum(axis=1)) - np.diag(m)))

    return 0.5 * (ce(logits) + ce(logits.T))


def test_seed_3x3_batch_at_temperature_0_2_gives_the_seed_logits_and_loss():
    cos = torch.tensor(SEED_COSINES, dtype=torch.float64)
    logits = cos / 0.2
    expected = [[5.0, 0.6, 0.14], [0.71, 5.0, 0.66], [0.09, 0.59, 5.0]]
    np.testing.assert_allclose(logits.numpy(), expected, atol=5e-4)
    assert clip_loss(logits).item() == pytest.approx(0.022, abs=5e-4)
    assert clip_loss(logits).item() == pytest.approx(_numpy_infonce(logits.numpy()), abs=1e-12)


def test_clip_logits_are_scaled_cosines_of_normalised_embeddings():
    g = torch.Generator().manual_seed(0)
    img, txt = (
        torch.randn(4, 8, generator=g, dtype=torch.float64),
        torch.randn(5, 8, generator=g, dtype=torch.float64),
    )
    cos = (img / img.norm(dim=1, keepdim=True)) @ (txt / txt.norm(dim=1, keepdim=True)).T
    # Unnormalised inputs of any length give the same logits: the loss normalises for the caller.
    np.testing.assert_allclose(clip_logits(3.0 * img, 0.5 * txt, 5.0).numpy(), 5.0 * cos.numpy(), atol=1e-12)


def test_clip_loss_is_symmetric_and_matches_numpy_on_a_random_batch():
    logits = torch.randn(6, 6, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * 4
    assert clip_loss(logits).item() == pytest.approx(_numpy_infonce(logits.numpy()), abs=1e-12)
    assert clip_loss(logits.T).item() == pytest.approx(clip_loss(logits).item(), abs=1e-12)


def test_learned_logit_scale_receives_a_gradient():
    log_scale = torch.tensor(math.log(1 / 0.07), requires_grad=True)
    g = torch.Generator().manual_seed(2)
    clip_loss(
        clip_logits(torch.randn(4, 8, generator=g), torch.randn(4, 8, generator=g), log_scale.exp())
    ).backward()
    assert log_scale.grad is not None and log_scale.grad.item() != 0.0


# The seed's SigLIP pairs, reconstructed: its text gives only the losses, so the (label, logit) pairs are
# the ones that reproduce them (a confident match, an easy negative, a hard negative scored above zero).
@pytest.mark.parametrize(
    ("label", "logit", "loss"),
    [(1, 3.2, 0.04), (0, -2.1, 0.116), (0, 0.4, 0.913)],
    ids=["match", "easy", "hard"],
)
def test_seed_siglip_pair_losses(label, logit, loss):
    value = siglip_pair_loss(torch.tensor(logit, dtype=torch.float64), torch.tensor(label))
    assert value.item() == pytest.approx(loss, abs=5e-4)
    assert value.item() == pytest.approx(math.log1p(math.exp(logit if label == 0 else -logit)), abs=1e-12)


def test_siglip_loss_sums_pair_losses_over_the_batch_size():
    g = torch.Generator().manual_seed(3)
    img, txt = (
        torch.randn(4, 8, generator=g, dtype=torch.float64),
        torch.randn(4, 8, generator=g, dtype=torch.float64),
    )
    logits = siglip_logits(img, txt, 10.0, -10.0)
    cos = clip_logits(img, txt, 1.0)
    np.testing.assert_allclose(logits.numpy(), 10.0 * cos.numpy() - 10.0, atol=1e-12)
    z = 2 * np.eye(4) - 1
    expected = np.log1p(np.exp(-z * logits.numpy())).sum() / 4
    assert siglip_loss(logits).item() == pytest.approx(expected, abs=1e-12)


def test_siglip_head_starts_at_t_10_and_bias_minus_10_and_learns_both():
    head = SiglipHead()
    assert head.log_t.exp().item() == pytest.approx(10.0, rel=1e-6)
    assert head.bias.item() == -10.0
    g = torch.Generator().manual_seed(4)
    head(torch.randn(4, 8, generator=g), torch.randn(4, 8, generator=g)).backward()
    assert head.log_t.grad.item() != 0.0 and head.bias.grad.item() != 0.0


def test_seed_prompt_ensemble_example():
    # Reconstructed: the seed gives only the cosines. Three prompt embeddings of one class in a 3-d toy
    # space whose axes are the targets (the class itself and two others); unnormalised on purpose.
    prompts = torch.tensor([[0.7, 0.1, 0.1], [0.7, 0.5, 0.1], [0.9, 0.1, 0.0]], dtype=torch.float64)
    targets = torch.eye(3, dtype=torch.float64)
    cos = targets @ prompt_ensemble(prompts)
    np.testing.assert_allclose(cos.numpy(), [0.955, 0.284, 0.088], atol=5e-4)
    # Normalising each prompt first matters: the plain mean of raw vectors points elsewhere.
    raw = prompts.mean(dim=0) / prompts.mean(dim=0).norm()
    assert not np.allclose(raw.numpy(), cos.numpy(), atol=5e-4)


def _numpy_multi_positive(logits: np.ndarray, targets: np.ndarray) -> float:
    def one_way(z: np.ndarray, y: np.ndarray) -> float:
        rows = y.sum(axis=1) > 0
        z, y = z[rows], y[rows] / y[rows].sum(axis=1, keepdims=True)
        logp = z - z.max(axis=1, keepdims=True)
        logp = logp - np.log(np.exp(logp).sum(axis=1, keepdims=True))
        return float(-(y * logp).sum(axis=1).mean())

    return 0.5 * (one_way(logits, targets) + one_way(logits.T, targets.T))


def test_multi_positive_loss_is_clip_loss_with_one_partner_each():
    logits = torch.tensor(SEED_COSINES, dtype=torch.float64) / 0.2
    assert multi_positive_loss(logits, torch.eye(3)).item() == pytest.approx(
        clip_loss(logits).item(), abs=1e-12
    )


def test_multi_positive_loss_spreads_over_partners_and_skips_rows_without_any():
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(5, 7)) * 3
    targets = rng.random((5, 7)) < 0.3
    targets[2] = False  # an image no text describes: only its column terms remain
    targets[:, 4] = False  # a prompt true of no image in the batch: a negative only
    targets[0, 0] = targets[1, 1] = True
    got = multi_positive_loss(torch.tensor(logits), torch.tensor(targets)).item()
    assert got == pytest.approx(_numpy_multi_positive(logits, targets.astype(float)), abs=1e-10)
    # Moving logit mass onto the true pairs lowers the loss: the gradient points the right way.
    better = logits + 2.0 * targets
    assert multi_positive_loss(torch.tensor(better), torch.tensor(targets)).item() < got
