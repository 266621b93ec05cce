"""Point transformer in the Point-BERT / Point-MAE layout (the backbone DAPT, IDPT and Point-PEFT tune).

A point cloud (B, N, 3) becomes G patch tokens: FPS picks G centres, kNN takes K points around each
(:func:`~.point_ops.group`), a mini-PointNet (:class:`Encoder`) embeds each centred patch, an MLP embeds
each centre as its positional embedding. A class token joins, and timm ``Block``s run on ``[cls; patches]``
with the positional embedding added before *every* block, as Point-MAE does (``blk(x + pos)``); a tuner
wrapping ``blocks.i`` therefore sees an ordinary (B, N, C) sequence. The classifier input is
``[cls, max over patch tokens]`` (B, 2C), the head Point-MAE's 3-layer MLP.

Parameter and buffer names follow Point-MAE's fine-tuning model (``encoder.first_conv.0.weight``,
``pos_embed.2.bias``, ``blocks.3.attn.qkv.weight``, ...; Point-MAE's ``blocks.blocks.3`` becomes ``blocks.3``,
its ``cls_head_finetune`` our ``head``); :func:`checkpoint_filter_fn` maps Point-MAE and Point-BERT checkpoints.

Papers: Point-BERT (Yu et al., CVPR 2022), Point-MAE (Pang et al., ECCV 2022).
"""
from __future__ import annotations

import dataclasses
import os

import numpy as np
import torch
from timm.layers import trunc_normal_
from timm.models.vision_transformer import Attention, Block
from torch import nn

from ..ops.point_ops import group
from ..tuners.descriptor import BackboneSpec
from .vit import vit_attend, vit_project_kv


class Group(nn.Module):
    """FPS + kNN patches: points (B, N, 3) -> neighborhood (B, G, K, 3) centred on center (B, G, 3)."""

    def __init__(self, num_group: int, group_size: int):
        super().__init__()
        self.num_group = num_group
        self.group_size = group_size

    def forward(self, xyz: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return group(xyz, self.num_group, self.group_size)

    def extra_repr(self) -> str:
        return f'num_group={self.num_group}, group_size={self.group_size}'


class Encoder(nn.Module):
    """Mini-PointNet patch embedding: patches (B, G, K, 3) -> tokens (B, G, C).

    Per point 3 -> 128 -> 256, max over the patch, the patch feature joins every point (512), 512 -> 512 -> C,
    max over the patch again.
    """

    def __init__(self, encoder_channel: int):
        super().__init__()
        self.encoder_channel = encoder_channel
        self.first_conv = nn.Sequential(
            nn.Conv1d(3, 128, 1), nn.BatchNorm1d(128), nn.ReLU(inplace=True), nn.Conv1d(128, 256, 1))
        self.second_conv = nn.Sequential(
            nn.Conv1d(512, 512, 1), nn.BatchNorm1d(512), nn.ReLU(inplace=True), nn.Conv1d(512, encoder_channel, 1))

    def forward(self, point_groups: torch.Tensor) -> torch.Tensor:
        B, G, K, _ = point_groups.shape
        x = self.first_conv(point_groups.reshape(B * G, K, 3).transpose(1, 2))  # (BG, 256, K)
        x_global = x.max(dim=2, keepdim=True).values  # (BG, 256, 1)
        x = torch.cat([x_global.expand(-1, -1, K), x], dim=1)  # (BG, 512, K)
        x = self.second_conv(x).max(dim=2).values  # (BG, C)
        return x.reshape(B, G, self.encoder_channel)  # (B, G, C)


def point_mae_head(in_features: int, num_classes: int, dropout: float = 0.5) -> nn.Sequential:
    """Point-MAE's classification head (``cls_head_finetune``): in -> 256 -> 256 -> classes, BN + ReLU + dropout."""
    return nn.Sequential(
        nn.Linear(in_features, 256), nn.BatchNorm1d(256), nn.ReLU(inplace=True), nn.Dropout(dropout),
        nn.Linear(256, 256), nn.BatchNorm1d(256), nn.ReLU(inplace=True), nn.Dropout(dropout),
        nn.Linear(256, num_classes))


class PointTransformer(nn.Module):
    """Point-MAE / Point-BERT transformer; defaults are Point-MAE's ViT-S (384 wide, 12 blocks, 6 heads).

    Args:
        trans_dim: token width C.
        depth: number of blocks.
        num_heads: attention heads.
        group_size: points per patch K.
        num_group: patches G (Point-MAE: 64 on ModelNet40, 128 on ScanObjectNN).
        encoder_dims: mini-PointNet output width; 384 = ``trans_dim`` in Point-MAE (no projection), 256 in
            Point-BERT, which then projects with ``reduce_dim`` (Linear 256 -> 384).
        mlp_ratio: block MLP width / C.
        drop_path_rate: stochastic depth of the last block, linearly increasing from 0 (0.1 in the recipes).
        num_classes: classes of the head; 0 keeps ``head`` an Identity and ``forward`` returns the (B, 2C) features.
        head_dropout: dropout of the head's two hidden layers.
        pos_every_block: add the positional embedding before every block (Point-MAE, Point-BERT, IDPT; prompt
            tokens a tuner inserted after the class token get zeros) or only once before the first (DAPT, whose
            blocks insert prompt tokens so the sequence grows block by block).
        prompt_pool: None (head on ``[cls, max of patches]``) or ``'max'``/``'mean'``: DAPT's head on
            ``[cls, pooled prompt tokens, max of patches]``, the prompts being the tokens between the class token
            and the last G patch tokens (IDPT's one prompt: either pooling returns it).
        patch_pool: ``'max'`` (every recipe) or None: no patch feature in the head (DAPT on OBJ_ONLY reads
            ``[cls, pooled prompts]`` only).
    """

    num_prefix_tokens = 1

    def __init__(self, trans_dim: int = 384, depth: int = 12, num_heads: int = 6, group_size: int = 32,
                 num_group: int = 64, encoder_dims: int = 384, mlp_ratio: float = 4.0, drop_path_rate: float = 0.0,
                 num_classes: int = 0, head_dropout: float = 0.5, pos_every_block: bool = True,
                 prompt_pool: str | None = None, patch_pool: str | None = 'max'):
        super().__init__()
        if prompt_pool not in (None, 'max', 'mean'):
            raise ValueError(f'prompt_pool must be None, "max" or "mean", got {prompt_pool!r}')
        if patch_pool not in (None, 'max'):
            raise ValueError(f'patch_pool must be "max" or None, got {patch_pool!r}')
        self.trans_dim = self.embed_dim = self.num_features = trans_dim
        self.prompt_pool, self.patch_pool = prompt_pool, patch_pool
        self.head_hidden_size = (1 + bool(prompt_pool) + bool(patch_pool)) * trans_dim
        self.num_classes = num_classes
        self.head_dropout = head_dropout
        self.pos_every_block = pos_every_block
        self.group_divider = Group(num_group, group_size)
        self.encoder = Encoder(encoder_dims)
        self.reduce_dim = nn.Linear(encoder_dims, trans_dim) if encoder_dims != trans_dim else nn.Identity()
        self.cls_token = nn.Parameter(torch.zeros(1, 1, trans_dim))
        self.cls_pos = nn.Parameter(torch.zeros(1, 1, trans_dim))
        self.pos_embed = nn.Sequential(nn.Linear(3, 128), nn.GELU(), nn.Linear(128, trans_dim))
        dpr = [drop_path_rate * i / max(depth - 1, 1) for i in range(depth)]  # linspace, also on the meta device
        # Point-MAE's blocks: no qkv bias, torch LayerNorm (eps 1e-5, timm's default is 1e-6)
        self.blocks = nn.Sequential(*[
            Block(trans_dim, num_heads, mlp_ratio=mlp_ratio, qkv_bias=False, drop_path=dpr[i],
                  norm_layer=nn.LayerNorm) for i in range(depth)])
        self.norm = nn.LayerNorm(trans_dim)
        self.head = self._make_head(num_classes)
        self.apply(_init_weights)
        trunc_normal_(self.cls_token, std=0.02)
        trunc_normal_(self.cls_pos, std=0.02)

    def _make_head(self, num_classes: int) -> nn.Module:
        if num_classes <= 0:
            return nn.Identity()
        return point_mae_head(self.head_hidden_size, num_classes, self.head_dropout)

    def embed(self, pts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Points (B, N, 3) -> tokens ``[cls; patches]`` (B, 1+G, C) and their positional embedding (B, 1+G, C)."""
        neighborhood, center = self.group_divider(pts)  # (B, G, K, 3), (B, G, 3)
        tokens = self.reduce_dim(self.encoder(neighborhood))  # (B, G, C)
        B = tokens.shape[0]
        x = torch.cat([self.cls_token.expand(B, -1, -1), tokens], dim=1)  # (B, 1+G, C)
        pos = torch.cat([self.cls_pos.expand(B, -1, -1), self.pos_embed(center)], dim=1)  # (B, 1+G, C)
        return x, pos

    def forward_features(self, pts: torch.Tensor) -> torch.Tensor:
        """Points (B, N, 3) -> normed tokens (B, 1+P+G, C): the class token, P prompt tokens a tuner inserted
        (none untuned), then one token per patch."""
        x, pos = self.embed(pts)
        if not self.pos_every_block:  # DAPT: positions once; its blocks may then insert tokens
            return self.norm(self.blocks(x + pos))
        for i, blk in enumerate(self.blocks):
            x = blk(x + self._pad_positions(pos, x.shape[1], i))
        return self.norm(x)

    def _pad_positions(self, pos: torch.Tensor, num_tokens: int, block: int) -> torch.Tensor:
        """Positions (B, 1+G, C) for a sequence that a tuner grew to ``num_tokens`` by inserting prompt tokens after
        the class token (IDPT before the last block): the prompts carry their own embedding, so they get zeros."""
        extra = num_tokens - pos.shape[1]
        if extra < 0:
            raise RuntimeError(f'block {block} gets {num_tokens} tokens but there are {pos.shape[1]} positions: a '
                               'tuner dropped tokens; only prompts inserted after the class token are supported')
        if extra == 0:
            return pos
        n = self.num_prefix_tokens
        return torch.cat([pos[:, :n], pos.new_zeros(pos.shape[0], extra, pos.shape[2]), pos[:, n:]], dim=1)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Tokens (B, 1+P+G, C) -> ``[cls, (pooled prompts,) (max over patches)]`` (B, 2C or 3C), then the head's
        logits unless ``pre_logits``. P prompt tokens sit between the class token and the G patch tokens."""
        n, G = self.num_prefix_tokens, self.group_divider.num_group
        parts = [x[:, 0]]
        if self.prompt_pool:
            prompts = x[:, n:x.shape[1] - G]  # (B, P, C)
            if prompts.shape[1] == 0:
                parts.append(x.new_zeros(x.shape[0], x.shape[2]))
            else:
                parts.append(prompts.max(dim=1).values if self.prompt_pool == 'max' else prompts.mean(dim=1))
        if self.patch_pool:
            parts.append(x[:, x.shape[1] - G:].max(dim=1).values)
        feats = torch.cat(parts, dim=-1)  # (B, 2C or 3C)
        return feats if pre_logits else self.head(feats)

    def forward(self, pts: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(pts))

    def get_classifier(self) -> nn.Module:
        return self.head

    def reset_classifier(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.head = self._make_head(num_classes)
        self.head.apply(_init_weights)

    @torch.jit.ignore
    def no_weight_decay(self) -> set[str]:
        return {'cls_token', 'cls_pos'}

    def petl_spec(self) -> BackboneSpec:
        """Descriptor for tuners. With positions added before every block (Point-MAE) the block stack is not one
        op, so ``token_ops``/``bypass_ops`` are None (VPT prompts join each attention's keys/values); with
        ``pos_every_block=False`` (DAPT) the stack is called as one Sequential and tokens may be inserted.
        SSF's stem is the tokenizer output (B, G, C), as DAPT's scale/shift."""
        stack = None if self.pos_every_block else 'blocks.*'
        return BackboneSpec(
            name='point', blocks='blocks.*', token_ops=stack, num_prefix_tokens=self.num_prefix_tokens,
            attention_types=(Attention,), attend=vit_attend, project_kv=vit_project_kv,
            num_heads=_num_heads, stem='encoder', final_norm='norm', bypass_ops=stack)


def _num_heads(attn: nn.Module) -> int:
    return attn.num_heads


def _init_weights(m: nn.Module) -> None:
    """Point-MAE's initialisation: truncated normal (std 0.02) Linear/Conv1d weights, zero biases, unit LayerNorms."""
    if isinstance(m, (nn.Linear, nn.Conv1d)):
        trunc_normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.LayerNorm):
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)


# Source-model prefixes of the encoder inside pretraining checkpoints (after DDP's ``module.``).
ENCODER_PREFIXES = ('MAE_encoder.', 'transformer_q.', 'ACT_encoder.', 'base_model.')
# Pretraining-only parts: Point-MAE's decoder, Point-BERT's momentum encoder, dVAE, MoCo queue and token heads.
PRETRAIN_ONLY = ('MAE_decoder.', 'decoder_pos_embed.', 'increase_dim.', 'mask_token', 'transformer_k.', 'dvae.',
                 'queue', 'lm_head.', 'cls_head.')


def _unwrap(checkpoint: dict) -> dict[str, torch.Tensor]:
    for key in ('base_model', 'state_dict', 'model'):
        if isinstance(checkpoint.get(key), dict):
            return checkpoint[key]
    return checkpoint


def _rename(key: str) -> str:
    key = key.replace('module.', '')
    for prefix in ENCODER_PREFIXES:
        if key.startswith(prefix):
            key = key[len(prefix):]
            break
    return key.replace('blocks.blocks.', 'blocks.').replace('cls_head_finetune.', 'head.')


def checkpoint_filter_fn(checkpoint: dict, model: nn.Module | None = None) -> dict[str, torch.Tensor]:
    """A Point-MAE / Point-BERT / DAPT checkpoint (or its state dict) -> our state dict.

    Unwraps ``base_model`` (their runners' checkpoints), strips DDP's ``module.`` and the pretraining model's
    encoder prefix (``MAE_encoder.``, ``transformer_q.``, ``ACT_encoder.``), renames ``blocks.blocks.N`` ->
    ``blocks.N`` and ``cls_head_finetune`` -> ``head``, and drops the pretraining-only parts (decoder, mask token,
    momentum encoder, dVAE, token/contrastive heads). ``model`` is unused (timm's filter signature).
    """
    state = {_rename(k): v for k, v in _unwrap(checkpoint).items()}
    return {k: v for k, v in state.items() if not k.startswith(PRETRAIN_ONLY)}


@dataclasses.dataclass
class PointCheckpointReport:
    """What :func:`load_point_checkpoint` loaded: key lists in our names."""

    loaded: list[str]
    missing: list[str]
    unexpected: list[str]
    mismatched: list[str]

    def __str__(self) -> str:
        return (f'loaded {len(self.loaded)} tensors; missing {self.missing}; unexpected {self.unexpected}; '
                f'shape mismatch (skipped) {self.mismatched}')


def _numpy_safe_globals() -> list:
    """numpy scalars, arrays and dtypes (Point-MAE's runners save metrics as numpy scalars) for ``weights_only``
    loading, under numpy 1 (``numpy.core``) and numpy 2 (``numpy._core``) names."""
    scalar, reconstruct = np.float32(0).__reduce__()[0], np.zeros(0).__reduce__()[0]
    numeric = '?' + np.typecodes['AllInteger'] + np.typecodes['AllFloat']
    allowed = [np.dtype, np.ndarray, *{type(np.dtype(code)) for code in numeric}]
    for core in ('numpy.core', 'numpy._core'):
        allowed += [(scalar, f'{core}.multiarray.scalar'), (reconstruct, f'{core}.multiarray._reconstruct')]
    return allowed


# Missing after loading a pretraining checkpoint by design: Point-MAE pretrains without a class token, and no
# pretraining checkpoint has the classification head.
EXPECTED_MISSING = ('cls_token', 'cls_pos', 'head.')


def load_point_checkpoint(model: PointTransformer, path: str | os.PathLike,
                          strict: bool = True) -> PointCheckpointReport:
    """Load a Point-MAE / Point-BERT (pretrain or fine-tune) checkpoint into ``model``.

    ``strict`` raises when a backbone tensor is missing (other than :data:`EXPECTED_MISSING`), when a key is left
    unused, or when a shape differs (mostly: another model size, or a head for another class count); with
    ``strict=False`` those are skipped and listed in the returned report.
    """
    try:
        with torch.serialization.safe_globals(_numpy_safe_globals()):
            checkpoint = torch.load(path, map_location='cpu', weights_only=True)
    except FileNotFoundError:
        raise FileNotFoundError(f'point checkpoint {path} does not exist; download the Point-MAE / Point-BERT '
                                'pretrained weights (see docs/point_clouds.md) and pass their path') from None
    except Exception as e:  # torch raises UnpicklingError subclasses for non-tensor objects
        raise ValueError(f'{path} holds objects other than tensors and plain containers, so it is not loaded '
                         f'(torch.load weights_only=True: {e}). If you trust the file, re-save just its state dict '
                         'with torch.save({"base_model": state_dict}, new_path)') from e
    state = checkpoint_filter_fn(checkpoint)
    own = model.state_dict()
    shapes = {k: (tuple(v.shape), tuple(own[k].shape))
              for k, v in state.items() if k in own and own[k].shape != v.shape}
    report = PointCheckpointReport(
        loaded=sorted(k for k in state if k in own and k not in shapes), missing=sorted(set(own) - set(state)),
        unexpected=sorted(set(state) - set(own)), mismatched=sorted(shapes))
    missing_body = [k for k in report.missing if not k.startswith(EXPECTED_MISSING)]
    if strict and (missing_body or report.unexpected or shapes):
        raise ValueError(f'{path} does not fit {type(model).__name__}: missing {missing_body[:5]}, unexpected '
                         f'{report.unexpected[:5]}, shape (checkpoint, model) {dict(list(shapes.items())[:3])}. '
                         "Build the model with the checkpoint's config (trans_dim, depth, encoder_dims, num_classes) "
                         'or pass strict=False to load what fits')
    model.load_state_dict({k: state[k] for k in report.loaded}, strict=False)
    return report
