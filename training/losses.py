"""The two contrastive objectives of the seed, in torch: CLIP's softmax and SigLIP's sigmoid.

Both take *unnormalised* embeddings and normalise them here, so a caller cannot forget to.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def normalize(x: torch.Tensor) -> torch.Tensor:
    return F.normalize(x, dim=-1)


def clip_logits(image_emb: torch.Tensor, text_emb: torch.Tensor, scale: torch.Tensor | float) -> torch.Tensor:
    """(N, d), (M, d) -> (N, M) image-to-text logits: cosine similarity times `scale` (= 1 / temperature)."""
    return scale * normalize(image_emb) @ normalize(text_emb).T


def clip_loss(logits: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE over an (N, N) logit matrix whose matching pairs lie on the diagonal.

    The mean of the image->text and the text->image cross-entropies, as in CLIP.
    """
    target = torch.arange(logits.shape[0], device=logits.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))


def multi_positive_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE when a row or column may have several true partners (or none).

    `targets` (N, M) marks every image-text pair that is true. Each direction's cross-entropy uses the
    uniform distribution over a row's (column's) true partners; rows and columns with none are skipped.
    With exactly one true partner per row and column this is `clip_loss`.
    """
    t = targets.to(logits.dtype)

    def one_way(z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        n = y.sum(dim=1)
        keep = n > 0
        p = y[keep] / n[keep, None]
        return -(p * F.log_softmax(z[keep], dim=1)).sum(dim=1).mean()

    return 0.5 * (one_way(logits, t) + one_way(logits.T, t.T))


def siglip_logits(
    image_emb: torch.Tensor, text_emb: torch.Tensor, t: torch.Tensor | float, b: torch.Tensor | float
) -> torch.Tensor:
    """(N, d), (M, d) -> (N, M) logits t * cos + b (t is the temperature already exponentiated)."""
    return t * normalize(image_emb) @ normalize(text_emb).T + b


def siglip_pair_loss(logit: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
    """-log sigmoid(z * logit) per pair, z = +1 for a matching pair and -1 otherwise (label in {0, 1})."""
    z = 2.0 * label.to(logit.dtype) - 1.0
    return -F.logsigmoid(z * logit)


def siglip_loss(logits: torch.Tensor) -> torch.Tensor:
    """SigLIP's pairwise sigmoid loss over an (N, N) logit matrix with matches on the diagonal.

    Summed over all N^2 pairs and divided by N (the paper's normalisation), so each pair is its own
    binary problem and no softmax couples the batch.
    """
    labels = torch.eye(logits.shape[0], device=logits.device)
    return siglip_pair_loss(logits, labels).sum() / logits.shape[0]


def prompt_ensemble(prompt_emb: torch.Tensor) -> torch.Tensor:
    """(P, d) embeddings of one class's prompts -> (d,) class embedding: normalised mean of normalised rows."""
    return normalize(normalize(prompt_emb).mean(dim=0))


class SiglipHead(torch.nn.Module):
    """SigLIP's learned temperature t' (t = exp t', init log 10) and bias b (init -10, for the many negatives)."""

    def __init__(self, init_log_t: float = 2.302585092994046, init_bias: float = -10.0) -> None:
        super().__init__()
        self.log_t = torch.nn.Parameter(torch.tensor(init_log_t))
        self.bias = torch.nn.Parameter(torch.tensor(init_bias))

    def forward(self, image_emb: torch.Tensor, text_emb: torch.Tensor) -> torch.Tensor:
        return siglip_loss(siglip_logits(image_emb, text_emb, self.log_t.exp(), self.bias))
