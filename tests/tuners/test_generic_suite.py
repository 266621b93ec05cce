"""The generic suite: every preset and every registered tuner type x every tiny backbone.

A new tuner is enrolled by registering it (its ``default_targets`` say where it goes).
"""
import pytest
import torch

import petl_vision as pv
from petl_vision.backbones import describe
from petl_vision.tuners import TUNERS, ParameterSelection, tuned_ops
from petl_vision.tuners.patterns import logical_param_name
from tests.conftest import SUITE_BACKBONES, example_inputs


def _cases(backbone: str) -> list[str]:
    declared = SUITE_BACKBONES[backbone].cases
    if declared is not None:
        return list(declared)
    spec = describe(SUITE_BACKBONES[backbone].build())
    return list(pv.list_presets()) + [f'type:{t}' for t in sorted(TUNERS) if TUNERS[t].example_plan(spec) is not None]


CASES = [(case, b) for b in SUITE_BACKBONES for case in _cases(b)]
BACKBONES = {name: b.build for name, b in SUITE_BACKBONES.items()}


def plan_of(case: str, backbone) -> str | list[dict]:
    if not case.startswith('type:'):
        return case
    return TUNERS[case[5:]].example_plan(describe(backbone))


def build(case: str, backbone: str):
    model = BACKBONES[backbone]().eval()
    frozen = BACKBONES[backbone]().eval()
    pv.apply_tuners(model, plan_of(case, model), trainable=(SUITE_BACKBONES[backbone].head,))
    return model, frozen


def perturb(model) -> None:
    """Move every trainable tensor away from its (often zero) initialisation."""
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(torch.randn(p.shape, generator=g) * 0.1)


@pytest.fixture(autouse=True)
def example_context(request):
    """Run each case inside the conditioning context its tuners read (task-conditioned hyper-adapters)."""
    params = getattr(request.node, 'callspec', None)
    if params is None or 'case' not in params.params:
        yield
        return
    backbone = BACKBONES[params.params['backbone']]()
    plan = plan_of(params.params['case'], backbone)
    plan = pv.tuners.presets.resolve_plan(plan, describe(backbone))
    ctx = {}
    for entry in plan:
        ctx.update(getattr(pv.tuners.get_tuner_cls(entry['type']), 'example_context', dict)())
    with pv.tuner_context(**ctx):
        yield


def plan_is_identity_at_init(model) -> bool:
    classes = [pv.tuners.get_tuner_cls(e['type']) for e in model.petl_plan]
    return all(c.identity_at_init for c in classes)


@pytest.mark.parametrize('case,backbone', CASES)
def test_only_tuner_and_trainable_params_get_gradients(case, backbone):
    images = example_inputs(backbone)
    model, _ = build(case, backbone)
    model.train()
    perturb(model)
    model(images).logsumexp(-1).sum().backward()
    selections = [pv.tuners.get_tuner_cls(e['type']) for e in model.petl_plan]
    selects_backbone = any(issubclass(c, ParameterSelection) for c in selections)
    for name, p in model.named_parameters():
        logical = logical_param_name(name, model)
        if p.requires_grad:
            assert p.grad is not None, f'{name} is trainable but got no gradient'
            assert logical is None or logical.startswith(SUITE_BACKBONES[backbone].head) or selects_backbone, name
        else:
            assert p.grad is None, f'frozen {name} got a gradient'


@pytest.mark.parametrize('case,backbone', CASES)
def test_zero_initialised_methods_start_at_the_frozen_model(case, backbone):
    images = example_inputs(backbone)
    model, frozen = build(case, backbone)
    if not plan_is_identity_at_init(model):
        assert not torch.allclose(model(images), frozen(images)), 'a prompt/SSF tuner should change the output'
        return
    torch.testing.assert_close(model(images), frozen(images), rtol=0, atol=1e-6)


@pytest.mark.parametrize('case,backbone', CASES)
def test_merge_matches_unmerged_and_unmerge_restores(case, backbone):
    images = example_inputs(backbone)
    model, _ = build(case, backbone)
    perturb(model)
    rows = pv.describe_tuners(model)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    expected = model(images)
    if not all(r['mergeable'] for r in rows):
        with pytest.raises(ValueError, match='cannot merge'):
            pv.merge_tuners(model)
        return
    pv.merge_tuners(model)
    assert all({n for _, n in op.merged} == {n for _, n, _ in op.all_tuners()} for op in tuned_ops(model))
    torch.testing.assert_close(model(images), expected, rtol=0, atol=1e-5)
    pv.unmerge_tuners(model)
    after = model.state_dict()
    assert set(after) == set(before)
    for k, v in before.items():
        torch.testing.assert_close(after[k], v, rtol=0, atol=1e-6, msg=k)
    torch.testing.assert_close(model(images), expected, rtol=0, atol=1e-5)


@pytest.mark.parametrize('case,backbone', CASES)
def test_save_load_round_trip_onto_a_fresh_backbone(case, backbone, tmp_path):
    images = example_inputs(backbone)
    model, fresh = build(case, backbone)
    perturb(model)
    path = pv.save_tuners(model, tmp_path / 'tuners.safetensors')
    pv.load_tuners(fresh, path)
    assert fresh.petl_plan == model.petl_plan
    src = {n: p for n, p in model.named_parameters() if p.requires_grad}
    dst = {n: p for n, p in fresh.named_parameters() if p.requires_grad}
    assert src.keys() == dst.keys()
    for n, p in src.items():
        assert torch.equal(p, dst[n]), n
    assert torch.equal(model(images), fresh(images))


@pytest.mark.parametrize('case,backbone', CASES)
def test_training_step_moves_tuners_and_keeps_frozen_weights(case, backbone):
    images = example_inputs(backbone)
    model, _ = build(case, backbone)
    model.train()
    perturb(model)
    frozen = {n: p.clone() for n, p in model.named_parameters() if not p.requires_grad}
    trained = {n: p.clone() for n, p in model.named_parameters() if p.requires_grad}
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    loss = torch.nn.functional.cross_entropy(model(images), torch.tensor([1, 3]))
    loss.backward()
    opt.step()
    for n, p in model.named_parameters():
        if n in frozen:
            assert torch.equal(p, frozen[n]), f'frozen {n} changed'
    moved = [n for n, p in model.named_parameters() if n in trained and not torch.equal(p, trained[n])]
    tuner_names = [n for n in trained if logical_param_name(n, model) is None]
    assert set(tuner_names) <= set(moved), f'tuner weights that did not move: {set(tuner_names) - set(moved)}'


@pytest.mark.parametrize('case,backbone', CASES)
def test_disabling_tuners_gives_the_frozen_model(case, backbone):
    images = example_inputs(backbone)
    model, frozen = build(case, backbone)
    perturb(model)
    if any(issubclass(pv.tuners.get_tuner_cls(e['type']), ParameterSelection) for e in model.petl_plan):
        return  # selections train the backbone's own weights: nothing to switch off
    pv.set_tuners_enabled(model, False)
    torch.testing.assert_close(model.forward_features(images), frozen.forward_features(images), rtol=0, atol=1e-6)
