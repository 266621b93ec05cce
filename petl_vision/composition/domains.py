"""Choosing adapters for a new domain: AdapterSoup's selection (Chronopoulou et al., Findings of EACL 2023) in vision.

A domain's *embedding* is the mean frozen-backbone feature of its images, every adapter off: the CLS token
(``pool='cls'``) or the mean of the patch tokens (``pool='mean'``; Swin: of the final feature map) of
``forward_features``. Each library entry stores the embedding of the domain its adapter was trained on
(:func:`embed_domain`); for a new domain, :func:`select_adapters` returns

- ``by='similarity'``: the ``k`` adapters whose domain embeddings are most cosine-similar to the new domain's;
- ``by='cluster'``: the adapters in the new domain's cluster, of a seeded k-means with ``k`` clusters over the
  library's unit-normalised domain embeddings (the new domain joins the nearest centre).

Both return ``[(name, cosine similarity)]``, most similar first; average them with
``combine_adapters(model, names, None, name)`` (AdapterSoup's uniform weights) or feed the order to
:func:`~petl_vision.composition.greedy.greedy_mix`.
"""
from collections.abc import Iterable, Sequence

import torch
from torch import nn

from ..tuners import backbone_fingerprint, tuner_context
from ..tuners.routing import BASE
from .library import AdapterLibrary, LibraryEntry, LibraryError

POOLS = ('cls', 'mean')
STRATEGIES = ('similarity', 'cluster')

Images = torch.Tensor | Iterable[torch.Tensor]


@torch.no_grad()
def domain_embedding(model: nn.Module, images: Images, pool: str = 'cls', batch_size: int = 64) -> torch.Tensor:
    """(C,) float32: the mean feature of ``images`` (one (N, 3, H, W) tensor or an iterable of such batches, as the
    model takes them: normalised floats) through the frozen backbone, every adapter off, in eval mode."""
    _check_pool(pool)
    batches = images.split(batch_size) if isinstance(images, torch.Tensor) else images
    total, count, training = None, 0, model.training
    model.eval()
    try:
        for x in batches:
            feats = pooled_features(model, x, pool).float().sum(0)  # (C,)
            total = feats if total is None else total + feats
            count += x.shape[0]
    finally:
        model.train(training)
    if not count:
        raise ValueError('no images given: a domain embedding is the mean feature of at least one image')
    return total / count


def pooled_features(model: nn.Module, x: torch.Tensor, pool: str) -> torch.Tensor:
    """x (B, 3, H, W) -> (B, C) frozen features (adapters off) pooled by ``pool``."""
    if not hasattr(model, 'forward_features'):
        raise TypeError(f'{type(model).__name__} has no forward_features (a timm backbone has); pass the backbone, '
                        'e.g. model.backbone of an ImageClassifier')
    with tuner_context(adapter=[BASE] * x.shape[0]):
        tokens = model.forward_features(x)
    if tokens.dim() == 4:  # (B, H, W, C): Swin's NHWC map, no CLS token
        if pool == 'cls':
            raise ValueError(f"{type(model).__name__} has no CLS token (its features are a (B, H, W, C) map); use "
                             "pool='mean'")
        return tokens.mean((1, 2))
    if tokens.dim() != 3:
        raise ValueError(f'forward_features gave shape {tuple(tokens.shape)}; expected tokens (B, N, C) or a map '
                         '(B, H, W, C)')
    if pool == 'cls':
        if getattr(model, 'cls_token', None) is None:
            raise ValueError(f"{type(model).__name__} has no CLS token; use pool='mean'")
        return tokens[:, 0]  # (B, C)
    return tokens[:, getattr(model, 'num_prefix_tokens', 0):].mean(1)  # (B, C): patch tokens only


def embed_domain(library: AdapterLibrary, model: nn.Module, name: str, images: Images, pool: str = 'cls',
                 batch_size: int = 64) -> LibraryEntry:
    """Store in ``library``'s entry ``name`` the embedding of the domain its adapter was trained on (``images``:
    that domain's training images, or a sample of them); ``model``: the backbone it was saved for."""
    entry = library.get(name)
    _check_backbone(model, [entry])
    count = len(images) if isinstance(images, torch.Tensor) else None
    vector = domain_embedding(model, images, pool, batch_size)
    return library.set_embedding(name, vector.tolist(), pool, images=count)


def select_adapters(library: AdapterLibrary, images_or_features: Images, k: int, by: str = 'similarity',
                    model: nn.Module | None = None, names: Sequence[str] | None = None, seed: int = 0
                    ) -> list[tuple[str, float]]:
    """Adapters of ``library`` (or of its ``names``) for a new domain, as ``[(name, cosine)]``, most similar first.

    Args:
        images_or_features: the new domain as images (N, 3, H, W) or batches of them (``model`` needed: the backbone
            the library's adapters were saved for), frozen features (N, C) or an embedding (C,).
        k: ``by='similarity'``: how many adapters; ``by='cluster'``: how many k-means clusters.
        seed: k-means's initialisation.
    """
    if by not in STRATEGIES:
        raise ValueError(f'by must be one of {STRATEGIES}, got {by!r}')
    entries = library.select(names)
    table, pool = library_embeddings(library, entries)
    if not 1 <= k <= len(entries):
        raise ValueError(f'k must be in 1..{len(entries)} (the adapters with embeddings), got {k}')
    query = _query(images_or_features, model, entries, pool, table.shape[1])
    sims = _cosine(query, table)  # (N,)
    if by == 'similarity':
        chosen = _ranked(sims)[:k]
    else:
        centres, labels = kmeans(_unit(table), k, seed=seed)
        own = int((_unit(query[None]) @ centres.t()).argmax())  # the nearest centre (cosine)
        chosen = [i for i in _ranked(sims) if labels[i] == own]
    return [(entries[i].name, float(sims[i])) for i in chosen]


def library_embeddings(library: AdapterLibrary, entries: list[LibraryEntry]) -> tuple[torch.Tensor, str]:
    """(N, C) domain embeddings of ``entries`` and their pool; a clear error if any lacks one or they differ."""
    missing = [e.name for e in entries if not e.embedding]
    if missing:
        raise LibraryError(f'adapters {missing} of library {library.directory} have no domain embedding (indexes '
                           'written before embeddings existed have none); add one per adapter from the images of '
                           'the domain it was trained on: petl_vision.composition.embed_domain(library, backbone, '
                           "name, images, pool='cls')")
    pools = {e.embedding['pool'] for e in entries}
    sizes = {len(e.embedding['vector']) for e in entries}
    if len(pools) > 1 or len(sizes) > 1:
        raise LibraryError(f'the domain embeddings of library {library.directory} mix pools {sorted(pools)} or sizes '
                           f'{sorted(sizes)}; embed every domain with the same backbone and pool (embed_domain)')
    return torch.tensor([e.embedding['vector'] for e in entries], dtype=torch.float32), pools.pop()


def kmeans(points: torch.Tensor, k: int, seed: int = 0, iterations: int = 100) -> tuple[torch.Tensor, torch.Tensor]:
    """Lloyd's k-means with k-means++ seeding (a ``torch.Generator`` of ``seed``): points (N, D) -> centres (k, D),
    labels (N,). An emptied cluster restarts at the point farthest from its centre. Deterministic for a seed."""
    n = points.shape[0]
    if not 1 <= k <= n:
        raise ValueError(f'k must be in 1..{n} (the number of points), got {k}')
    points = points.double()
    generator = torch.Generator().manual_seed(seed)
    centres = _kmeans_pp(points, k, generator)
    labels = torch.full((n,), -1, dtype=torch.long)
    for _ in range(iterations):
        distances = torch.cdist(points, centres)  # (N, k)
        new = distances.argmin(1)
        if torch.equal(new, labels):
            break
        labels = new
        for c in range(k):
            members = labels == c
            if members.any():
                centres[c] = points[members].mean(0)
            else:
                far = int(distances.min(1).values.argmax())
                centres[c], labels[far] = points[far], c
    return centres.float(), labels


def _kmeans_pp(points: torch.Tensor, k: int, generator: torch.Generator) -> torch.Tensor:
    """k-means++: the first centre uniform, each next one drawn with probability proportional to D(x)^2."""
    chosen = [int(torch.randint(points.shape[0], (1,), generator=generator))]
    for _ in range(1, k):
        d2 = torch.cdist(points, points[chosen]).min(1).values ** 2  # (N,)
        if float(d2.sum()) == 0:  # every point sits on a centre (duplicates): the first point not chosen yet
            pick = next(i for i in range(points.shape[0]) if i not in chosen)
        else:
            pick = int(torch.multinomial(d2 / d2.sum(), 1, generator=generator))
        chosen.append(pick)
    return points[chosen].clone()


def _query(data: Images, model: nn.Module | None, entries: list[LibraryEntry], pool: str, dim: int) -> torch.Tensor:
    """(C,) the new domain's embedding from images (through ``model``), features or an embedding."""
    if isinstance(data, torch.Tensor) and data.dim() in (1, 2):
        query = data.float() if data.dim() == 1 else data.float().mean(0)
    else:
        if model is None:
            raise ValueError('images of the new domain need model= (the backbone the library was embedded with) to '
                             'compute their embedding; or pass their features (N, C) or embedding (C,)')
        _check_backbone(model, entries)
        query = domain_embedding(model, data, pool)
    query = query.detach().float().cpu()  # the library's embeddings live on the CPU, whatever the model's device
    if query.shape != (dim,):
        raise ValueError(f'the new domain\'s embedding has shape {tuple(query.shape)} but the library\'s domain '
                         f'embeddings have {dim} numbers ({pool} pool); embed it with the same backbone and pool')
    return query


def _check_backbone(model: nn.Module, entries: list[LibraryEntry]) -> None:
    here = backbone_fingerprint(model)['digest']
    other = [e.name for e in entries if e.backbone.get('digest') != here]
    if other:
        raise LibraryError(f'adapters {other} were saved for another backbone than this {type(model).__name__} '
                           f'(fingerprint {here}); embed domains with the backbone the adapters were trained on')


def _check_pool(pool: str) -> None:
    if pool not in POOLS:
        raise ValueError(f'pool must be one of {POOLS}, got {pool!r}')


def _unit(x: torch.Tensor) -> torch.Tensor:
    return x / x.norm(dim=-1, keepdim=True).clamp(min=1e-12)


def _cosine(query: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    return _unit(table) @ _unit(query)


def _ranked(sims: torch.Tensor) -> list[int]:
    """Indices by similarity, highest first; equal similarities keep the library's (name) order."""
    return sorted(range(len(sims)), key=lambda i: -float(sims[i]))
