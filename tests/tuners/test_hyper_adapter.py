"""Hyper-adapters on a tiny Swin: weights differ per task and layer, the task reaches them through the context
only, the shared hypernetwork is saved and loaded once, and bad settings fail with clear errors."""
import pytest
import torch

import petl_vision as pv
from petl_vision.tuners import tuned_ops
from tests.conftest import tiny_swin

TASKS = ['semseg', 'depth']
ATTN_MLP = ['layers.*.blocks.*.attn', 'layers.*.blocks.*.mlp']
TYPES = ['HyperAdapter', 'Polyhistor', 'PolyhistorLite', 'TaskAdapter']


def tuned(type_name: str, **kw):
    model = tiny_swin().eval()
    return pv.apply_tuners(model, [{'type': type_name, 'targets': ATTN_MLP, 'tasks': TASKS, **kw}])


def perturb(model, seed: int = 0) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(torch.randn(p.shape, generator=g) * 0.1)


def adapters(model):
    return [t for op in tuned_ops(model) for _, _, t in op.all_tuners()]


@pytest.mark.parametrize('type_name', TYPES)
def test_weights_differ_per_task_and_per_layer(type_name):
    model = tuned(type_name)
    perturb(model)
    first, second = adapters(model)[:2]  # layers.0.blocks.0 attn and mlp: same width, different layers
    w_a = first.weights('semseg')
    w_b = first.weights('depth')
    w_l = second.weights('semseg')
    for a, c in zip(w_a, w_l):
        assert a.shape == c.shape
    assert (w_a[0] - w_b[0]).abs().max() > 1e-3 and (w_a[2] - w_b[2]).abs().max() > 1e-3
    assert (w_a[0] - w_l[0]).abs().max() > 1e-3
    shapes = {tuple(t.weights('semseg')[0].shape) for t in adapters(model)}
    assert shapes == {(4, 16), (8, 32)}  # r = d / 4 on both stages


@pytest.mark.parametrize('type_name', TYPES)
def test_context_routes_the_task(type_name, images):
    model = tuned(type_name)
    frozen = tiny_swin().eval()
    torch.testing.assert_close(_run(model, images, 'semseg'), frozen(images), rtol=0, atol=1e-6)  # zero up-proj
    perturb(model)
    out_a, out_b = _run(model, images, 'semseg'), _run(model, images, 'depth')
    assert (out_a - out_b).abs().max() > 1e-4
    torch.testing.assert_close(_run(model, images, 'semseg'), out_a)  # deterministic, nothing leaks between calls
    with pytest.raises(RuntimeError, match=r"needs 'task' in the tuner context"):
        model(images)
    with pytest.raises(KeyError, match='normals'), pv.tuner_context(task='normals'):
        model(images)


def _run(model, images, task):
    with pv.tuner_context(task=task):
        return model(images)


@pytest.mark.parametrize('type_name', ['HyperAdapter', 'Polyhistor', 'PolyhistorLite'])
def test_hypernetwork_saved_once_and_restored(type_name, images, tmp_path):
    model = tuned(type_name)
    perturb(model)
    path = pv.save_tuners(model, tmp_path / 't.safetensors')
    _, tensors = pv.tuners.read_tuner_file(path)
    key = type_name.lower()
    assert sum(k.startswith(f'petl_sources.{key}.layer_embeddings.') for k in tensors) == 8  # 4 blocks x 2 ops
    assert not any('heads' in k for k in tensors if not k.startswith('petl_sources.'))
    fresh = pv.load_tuners(tiny_swin().eval(), path)
    for task in TASKS:
        assert torch.equal(_run(fresh, images, task), _run(model, images, task))
    # the hypernetwork is tuner state, not backbone: fingerprints and logical names ignore it
    assert pv.tuners.backbone_fingerprint(fresh) == pv.tuners.backbone_fingerprint(tiny_swin())


def test_polyhistor_scales_the_template_by_kronecker_products():
    model = tuned('Polyhistor')
    perturb(model)
    small, large = adapters(model)[0], adapters(model)[-1]  # stage widths 16 and 32: m = 1 and 2
    source = small.source
    assert (source.template_dim, source.template_rank) == (16, 4)
    assert small.scale_down.shape == (1, 1) and large.scale_down.shape == (2, 2)
    t_down, t_up = source.templates(source.embed('depth', large.layer_index))
    w_down, _, w_up, _ = large.weights('depth')
    s = large.scale_down.detach()
    torch.testing.assert_close(w_down[:4, 16:], s[0, 1] * t_down)  # block (0, 1) of S (x) T
    torch.testing.assert_close(w_up[16:, :4], large.scale_up[1, 0] * t_up)
    lite = tuned('PolyhistorLite', factor_rank=2)
    t_down, _ = lite.petl_sources.default.polyhistorlite.templates(torch.randn(64))
    assert torch.linalg.matrix_rank(t_down) <= 2  # templates are rank-k products


def test_bad_settings_fail_clearly():
    with pytest.raises(ValueError, match='not a multiple of the template width'):
        tuned('Polyhistor', template_dim=12, reduction=4)
    with pytest.raises(ValueError, match='tasks must list distinct task names'):
        pv.apply_tuners(tiny_swin(), [{'type': 'Polyhistor', 'targets': ATTN_MLP}])
    plan = [{'type': 'HyperAdapter', 'targets': ATTN_MLP[0], 'tasks': TASKS},
            {'type': 'HyperAdapter', 'targets': ATTN_MLP[1], 'tasks': TASKS, 'embed_dim': 32}]
    with pytest.raises(ValueError, match='give this entry its own `name`'):
        pv.apply_tuners(tiny_swin(), plan)
    plan[1]['name'] = 'ffn'
    model = pv.apply_tuners(tiny_swin(), plan)
    assert set(model.petl_sources['default']) == {'hyperadapter', 'ffn'}
    with pytest.raises(ValueError, match='cannot merge'):
        pv.merge_tuners(model)
