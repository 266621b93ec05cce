"""The model zoo table: every pretrained file petl_vision knows by name, with its source, sha256 and licence.

Image backbones are timm's own conversions on the Hugging Face hub (``timm/<arch>.<tag>``, found with
``timm.models.get_pretrained_cfg``): safetensors files whose keys match timm's models, so they load with no
conversion. They are fetched with huggingface_hub into the Hugging Face cache timm uses, pinned to a commit where
the commit is known. ``sha256=None`` means no checksum has been published or found: a hub file is then checked
against the sha256 the hub reports and, like a hub entry with no revision, locked to the commit and sha256 of its
first download in the user's lock file (:mod:`.lock`); other files must be complete archives, and the computed
value is reported so it can be pinned here (docs/zoo.md, "Checksum policy").
"""
import difflib
import re
from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class ZooEntry:
    """One named file of the zoo.

    Attributes:
        name: zoo name, ``<arch>.<tag>``; ``zoo://<name>`` in configs.
        url: where the file is downloaded from.
        sha256: hex digest of the file, or None while none is pinned.
        license: licence of the weights (SPDX id where there is one).
        kind: ``'backbone'`` (pretrained weights) or ``'tuner'`` (a released tuner-only checkpoint).
        arch: model the weights are for: a timm model name, or ``'point_transformer'``.
        filename: file name in the cache; names the format (``.safetensors`` or a torch ``.pth``).
        notes: provenance and which papers use it.
        hub_repo: Hugging Face repo id (``timm/vit_base_patch16_224.orig_in21k``) for hub-hosted files, else None.
        hub_file: file name inside ``hub_repo``.
        revision: commit hash of ``hub_repo`` the file is pinned to; None follows the repo's ``main`` branch.
    """

    name: str
    url: str
    sha256: str | None
    license: str
    kind: Literal['backbone', 'tuner']
    arch: str
    filename: str
    notes: str = ''
    hub_repo: str | None = None
    hub_file: str = 'model.safetensors'
    revision: str | None = None

    def __post_init__(self):
        if self.kind not in ('backbone', 'tuner'):
            raise ValueError(f'zoo entry {self.name}: kind must be "backbone" or "tuner", got {self.kind!r}')
        if self.sha256 is not None and not re.fullmatch(r'[0-9a-fA-F]{64}', self.sha256):
            raise ValueError(f'zoo entry {self.name}: sha256 must be 64 hex digits or None, got {self.sha256!r}')
        if self.revision is not None and not re.fullmatch(r'[0-9a-f]{40}', self.revision):
            raise ValueError(f'zoo entry {self.name}: revision must be a 40-hex commit hash or None, '
                             f'got {self.revision!r}')
        if self.sha256 is not None:  # hex digests compare case-insensitively
            object.__setattr__(self, 'sha256', self.sha256.lower())


def _timm_hub(name: str, hub_tag: str, license: str, notes: str, revision: str | None = None,
              sha256: str | None = None) -> ZooEntry:
    """A timm model on the Hugging Face hub; ``hub_tag`` is timm's pretrained tag (``orig_in21k``)."""
    arch = name.split('.')[0]
    repo = f'timm/{arch}.{hub_tag}'
    url = f'https://huggingface.co/{repo}/resolve/{revision or "main"}/model.safetensors'
    return ZooEntry(name, url, sha256, license, 'backbone', arch, f'{name}.safetensors', notes, hub_repo=repo,
                    revision=revision)


# Pins, from the hub's own pages (a pin is only written where such a page was found):
# - vit_base_patch16_224.in21k: sha256 is the "Git LFS Details" SHA256 of
#   https://huggingface.co/timm/vit_base_patch16_224.orig_in21k/blob/main/model.safetensors (343 MB, last changed
#   in commit 2e13465); revision 677f7d8... is the commit of
#   https://huggingface.co/timm/vit_base_patch16_224.orig_in21k/tree/677f7d814cf0d89b7e65b1ea49277ed508a62363,
#   whose tree holds that model.safetensors.
# - vit_large_patch16_224.in21k: revision from
#   https://huggingface.co/timm/vit_large_patch16_224.orig_in21k/tree/ff41090bd8b58f56124a0b67759692952f661487
#   (model.safetensors 1.21 GB); its sha256 page was not found, so the digest is unpinned.
# - vit_small augreg_in21k, vit_base mae, swin_tiny / swin_base ms_in22k: neither a full commit hash nor the
#   LFS sha256 of model.safetensors was found (searched again 2026-12-01: stored hub pages, the hub repos' tree /
#   blob / resolve / commit URLs, model cards, HF cache listings in public code; none of these four repos, nor
#   the vit_large blob page, is stored). Their first download follows `main`, is checked against the sha256 the
#   hub reports (the ETag huggingface_hub stores the blob under) and is locked: the commit and sha256 it got go
#   into the user's zoo.lock.json (petl_vision/zoo/lock.py), which later downloads keep to; vit_large's sha256 the
#   same way.
# - point_mae.shapenet, point_bert.shapenet: their publishers give no checksum (GitHub release asset, Tsinghua
#   Cloud link); unpinned, so a download must be a complete archive before it is cached.
ZOO: dict[str, ZooEntry] = {e.name: e for e in [
    _timm_hub('vit_base_patch16_224.in21k', 'orig_in21k', 'apache-2.0',
              "Google's original ViT-B/16 ImageNet-21k weights (ViT-B_16.npz), no head; the backbone of VPT, "
              'NOAH, SSF, FacT, Convpass and most VTAB-1k / FGVC PETL results.',
              revision='677f7d814cf0d89b7e65b1ea49277ed508a62363',
              sha256='1cf14745201dfaffba38831c7cc1003c51618569d0a5dd31a895fe604c427253'),
    _timm_hub('vit_large_patch16_224.in21k', 'orig_in21k', 'apache-2.0',
              "Google's original ViT-L/16 ImageNet-21k weights, no head.",
              revision='ff41090bd8b58f56124a0b67759692952f661487'),
    _timm_hub('vit_small_patch16_224.in21k', 'augreg_in21k', 'apache-2.0',
              'AugReg ViT-S/16 ImageNet-21k weights (How to train your ViT), 21843-class head.'),
    _timm_hub('vit_base_patch16_224.mae', 'mae', 'cc-by-nc-4.0',
              'MAE self-supervised ViT-B/16 (ImageNet-1k), no head; for self-supervised comparisons (AdaptFormer).'),
    _timm_hub('swin_tiny_patch4_window7_224.in22k', 'ms_in22k', 'mit',
              "Microsoft's Swin-T ImageNet-22k weights, 21841-class head."),
    _timm_hub('swin_base_patch4_window7_224.in22k', 'ms_in22k', 'mit',
              "Microsoft's Swin-B ImageNet-22k weights, 21841-class head; VPT and SSF report Swin-B results on it."),
    ZooEntry('point_mae.shapenet', 'https://github.com/Pang-Yatian/Point-MAE/releases/download/main/pretrain.pth',
             None, 'mit', 'backbone', 'point_transformer', 'point_mae.shapenet.pth',
             'Point-MAE ShapeNet pretraining (Pang et al., ECCV 2022), the release "pretrain.pth"; the backbone '
             'of IDPT, DAPT and Point-PEFT. Load with petl_vision.backbones.point_transformer.load_point_checkpoint.'),
    ZooEntry('point_bert.shapenet', 'https://cloud.tsinghua.edu.cn/f/202b29805eea45d7be92/?dl=1',
             None, 'mit', 'backbone', 'point_transformer', 'point_bert.shapenet.pth',
             'Point-BERT ShapeNet pretraining (Yu et al., CVPR 2022), the README\'s Tsinghua Cloud link; the other '
             'backbone of IDPT, DAPT and Point-PEFT. '
             'Load with petl_vision.backbones.point_transformer.load_point_checkpoint.'),
]}


def list_models(kind: str | None = None) -> list[str]:
    """Sorted zoo names, optionally only those of one ``kind`` (``'backbone'`` or ``'tuner'``)."""
    return sorted(name for name, entry in ZOO.items() if kind is None or entry.kind == kind)


def get_entry(name: str) -> ZooEntry:
    """The entry called ``name``; an unknown name raises ``KeyError`` listing the closest known names."""
    if name in ZOO:
        return ZOO[name]
    close = difflib.get_close_matches(name, ZOO, n=3, cutoff=0.4)
    hint = f'closest: {", ".join(close)}' if close else f'known: {", ".join(list_models())}'
    raise KeyError(f'no zoo entry named {name!r}; {hint} (python tools/zoo.py list shows them all)')
