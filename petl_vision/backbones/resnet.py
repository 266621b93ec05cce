"""Descriptor for timm's ResNet family (ResNet-18/34 basic blocks, ResNet-50+ bottlenecks).

ResNets are convolutional: block outputs are NCHW feature maps (``channel_dim=1``), there is no attention
and no final norm. The descriptor names the k x k convolutions inside the residual blocks (``conv_ops``:
``layer*.*.conv1`` and ``layer*.*.conv2`` in basic blocks, ``layer*.*.conv2`` in bottlenecks), where TSA
and ProLAD attach a parallel 1x1 convolution, and the last block, whose globally pooled output is the
feature vector (``feature_op``). Stages are named ``layer1`` .. ``layer4`` as in timm and torchvision.
"""
from timm.models.resnet import ResNet
from torch import nn

from ..tuners.descriptor import BackboneSpec, register_descriptor
from ..tuners.tuned_op import TunedOp

STAGES = ('layer1', 'layer2', 'layer3', 'layer4')


def _untuned(module: nn.Module) -> nn.Module:
    """The frozen op inside a ``TunedOp`` (the descriptor also describes tuned models)."""
    return module.base if isinstance(module, TunedOp) else module


def _spatial_convs(block: nn.Module) -> list[str]:
    """Names of the block's direct Conv2d children with a kernel larger than 1 x 1."""
    children = ((n, _untuned(m)) for n, m in _untuned(block).named_children())
    return [n for n, m in children if isinstance(m, nn.Conv2d) and max(m.kernel_size) > 1]


@register_descriptor(ResNet)
def resnet_spec(model: ResNet) -> BackboneSpec:
    stages = [_untuned(getattr(model, s)) for s in STAGES if hasattr(model, s)]
    blocks = [b for stage in stages for b in stage]
    names = _spatial_convs(blocks[0])
    if any(_spatial_convs(b) != names for b in blocks):  # never in timm: one block type per network
        raise ValueError(f'{type(model).__name__} mixes block types; name its k x k convolutions in the plan')
    last = f'{STAGES[len(stages) - 1]}.{len(stages[-1]) - 1}'
    return BackboneSpec(
        name='resnet', blocks='layer*.*', token_ops=None, num_prefix_tokens=0, patch_size=(1, 1),
        stem='conv1' if isinstance(_untuned(model.conv1), nn.Conv2d) else None, final_norm=None, channel_dim=1,
        conv_ops=tuple(f'layer*.*.{n}' for n in names), feature_op=last)
