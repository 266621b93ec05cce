"""IDPT (Zha et al., ICCV 2023, "Instance-aware Dynamic Prompt Tuning for Pre-trained Point Cloud Models"): one
prompt token generated from the tokens themselves, inserted before the last block.

``IDPT`` is a sequential tuner on block ``L-2`` (the official ``prompt_layer: 11`` of 12): it reads the block's
output tokens after the class token, runs a DGCNN over them (EdgeConv layers in feature space, each
``max_k LeakyReLU(BN(W [x_j - x_i; x_i]))`` over the k nearest tokens, then a 1x1 conv + BN + LeakyReLU of their
concatenation and a max over tokens) and inserts the resulting (B, 1, C) token after the class token::

    y -> [y_cls; DGCNN(y_tokens); y_tokens]

The point transformer gives inserted tokens a zero positional embedding, and its head with ``prompt_pool`` reads
``[cls, prompt, max of patches]`` (IDPT's ``cls_type: all``). Official DGCNN on ViT-S (384 wide): 3 EdgeConvs
(3 x 295,680) + fusion 443,136 = 1,330,176 trainable; with the class token/position and the 3C-input head on 15
classes 1,696,783 (IDPT reports 1.7M). The official prompt position embedding is never trained (its optimizer
keeps names containing ``cls``; ``prompt_pos`` stays a random N(0, 0.02) vector): we leave it out.
"""
import dataclasses

import torch
from torch import nn

from ..ops.point_ops import index_points, knn
from .base import OpInfo, Tuner
from .config import TunerConfig
from .layers import insert_tokens
from .registry import register_tuner
from .task_vectors import TaskVector



@dataclasses.dataclass
class IDPTConfig(TunerConfig):
    k: int = 20  # DGCNN neighbours in feature space (clipped to the number of tokens)
    num_edge_convs: int = 3  # 3: the official "dgcnn" module; 1 and 2: its "dgcnn_light" / "dgcnn_light2"

    def __post_init__(self):
        if self.k < 1 or self.num_edge_convs < 1:
            raise ValueError(f'IDPT needs k >= 1 and num_edge_convs >= 1, got {self.k}, {self.num_edge_convs}')


def edge_features(x: torch.Tensor, k: int) -> torch.Tensor:
    """DGCNN's graph feature: tokens (B, C, T) -> (B, 2C, T, k) ``[x_j - x_i; x_i]`` over the k nearest tokens
    (in feature space, the token itself included)."""
    tokens = x.transpose(1, 2)  # (B, T, C)
    idx = knn(tokens, tokens, min(k, tokens.shape[1]))  # (B, T, k)
    neighbours = index_points(tokens, idx)  # (B, T, k, C)
    centre = tokens[:, :, None].expand_as(neighbours)  # (B, T, k, C)
    return torch.cat([neighbours - centre, centre], dim=-1).permute(0, 3, 1, 2)  # (B, 2C, T, k)


@register_tuner
class IDPT(Tuner):
    type_name = 'IDPT'
    config_cls = IDPTConfig
    placement = 'sequential'
    identity_at_init = False  # the sequence gains a prompt token
    keeps_shape = False

    def __init__(self, config: IDPTConfig, op: OpInfo):
        super().__init__(config, op)
        self.check_op(op)
        C = op.out_features
        self.num_prefix = op.spec.num_prefix_tokens
        self.edge_convs = nn.ModuleList([
            nn.Sequential(nn.Conv2d(2 * C, C, 1, bias=False), nn.BatchNorm2d(C), nn.LeakyReLU(0.2))
            for _ in range(config.num_edge_convs)])
        self.fuse = nn.Sequential(nn.Conv1d(config.num_edge_convs * C, C, 1, bias=False), nn.BatchNorm1d(C),
                                  nn.LeakyReLU(0.2))

    @classmethod
    def default_targets(cls, spec):
        raise ValueError(f'IDPT generates its prompt after one block: name it, e.g. targets="{spec.blocks[:-1]}10" '
                         'on a 12-block backbone (the block before the last, IDPT\'s prompt_layer 11)')

    @classmethod
    def example_plan(cls, spec):
        if spec.name != 'point':
            return None  # only the point transformer's head reads the prompt token
        return [{'type': 'IDPT', 'targets': spec.blocks.replace('*', '0')}]  # the tiny test backbones have 2 blocks

    def check_op(self, op: OpInfo) -> None:
        if op.kind != 'module' or op.in_features != op.out_features:
            raise ValueError(f'IDPT needs a transformer block (tokens in, tokens out); {op.name!r} is a {op.kind}')

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        """y: block output (B, n+T, C) -> (B, n+1+T, C) with the generated prompt after the n prefix tokens."""
        n = self.num_prefix
        x = y[:, n:].transpose(1, 2)  # (B, C, T)
        levels = []
        for conv in self.edge_convs:
            x = conv(edge_features(x, self.config.k)).max(dim=-1).values  # (B, C, T)
            levels.append(x)
        prompt = self.fuse(torch.cat(levels, dim=1)).max(dim=-1).values  # (B, C)
        return insert_tokens(y, [prompt[:, None].to(y.dtype)], n)

    def task_vector(self) -> TaskVector:
        raise TypeError(f'IDPT on {self.op_name!r} defines no task vector: its prompt generator keeps BatchNorm '
                        'statistics, so a weighted sum of its parameters does not define a prompt generator; mix IDPT '
                        'adapters per sample (tuner_context(adapter=[...])) instead')


# What IDPT trains besides its prompt module (the official optimizer keeps names containing ``cls``).
IDPT_TRAINABLE = ('head', 'cls_token', 'cls_pos')


def idpt_plan(depth: int = 12, k: int = 20) -> list[dict]:
    """IDPT's plan for a point transformer of ``depth`` blocks with ``prompt_pool`` set: the prompt is generated
    after block ``depth - 2`` and joins the last block. Use with ``trainable=IDPT_TRAINABLE``."""
    if depth < 2:
        raise ValueError(f'IDPT inserts its prompt before the last block; a {depth}-block backbone has none before it')
    return [{'type': 'IDPT', 'targets': f'blocks.{depth - 2}', 'k': k}]
