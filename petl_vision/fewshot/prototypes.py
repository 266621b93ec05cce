"""Nearest-centroid (prototype) classification, the few-shot classifier of URL, TSA and ProLAD.

Matches ``compute_prototypes`` / ``prototype_loss`` in ``VICO-UoE/URL`` (``models/losses.py``):
prototypes are class means of the support features; with ``distance='cos'`` the logits are the
cosine similarities to the prototypes times 10; with ``'l2'`` they are minus the squared Euclidean
distances; the loss is the cross-entropy of these logits.
"""
import torch
import torch.nn.functional as F

DISTANCES = ('cos', 'l2')


def prototypes(features: torch.Tensor, labels: torch.Tensor, n_way: int) -> torch.Tensor:
    """Class means. ``features``: (S, D); ``labels``: (S,) in [0, n_way). Returns (N, D)."""
    counts = torch.bincount(labels, minlength=n_way)
    if len(counts) > n_way or bool((counts == 0).any()):
        raise ValueError(f'support labels must cover every class 0..{n_way - 1} and nothing else; got counts '
                         f'{counts.tolist()} per class; relabel the episode to 0..N-1 (Episode does)')
    one_hot = F.one_hot(labels, n_way).to(features.dtype)  # (S, N)
    return one_hot.T @ features / counts.unsqueeze(1).to(features.dtype)  # (N, D)


def cosine_logits(query: torch.Tensor, protos: torch.Tensor, scale: float = 10.0) -> torch.Tensor:
    """``scale * cos(query_i, proto_k)``. ``query``: (Q, D); ``protos``: (N, D). Returns (Q, N)."""
    return scale * F.normalize(query, dim=-1) @ F.normalize(protos, dim=-1).T


def prototype_logits(query: torch.Tensor, protos: torch.Tensor, distance: str = 'cos') -> torch.Tensor:
    """Logits (Q, N) of query features (Q, D) against prototypes (N, D) for ``distance`` in DISTANCES."""
    if distance == 'cos':
        return cosine_logits(query, protos)
    if distance == 'l2':
        return -(query.unsqueeze(1) - protos.unsqueeze(0)).pow(2).sum(-1)  # (Q, N, D) -> (Q, N)
    raise ValueError(f'unknown distance {distance!r}; choose one of {DISTANCES}')


def prototype_loss(support_feats: torch.Tensor, support_labels: torch.Tensor, query_feats: torch.Tensor,
                   query_labels: torch.Tensor, distance: str = 'cos') -> tuple[torch.Tensor, float]:
    """Cross-entropy of nearest-centroid logits and query accuracy.

    ``support_feats``: (S, D); ``support_labels``: (S,) in [0, N); ``query_feats``: (Q, D);
    ``query_labels``: (Q,). N is taken from the support labels. TSA and ProLAD adapt on the support set
    alone by passing it as both support and query. Returns (loss (), accuracy in [0, 1]).
    """
    n_way = int(support_labels.max()) + 1
    logits = prototype_logits(query_feats, prototypes(support_feats, support_labels, n_way), distance)
    loss = F.cross_entropy(logits, query_labels)
    accuracy = (logits.argmax(dim=1) == query_labels).float().mean().item()
    return loss, accuracy
