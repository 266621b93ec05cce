"""The core's contracts: every way of running a tuned backbone sees its tuners, merge/unmerge restores the weights
exactly, placements are validated, attaching a plan is all or nothing. Each test here failed before the fix."""
import copy
import dataclasses

import pytest
import torch

import petl_vision as pv
from petl_vision.tuners import Tuner, TunerConfig, TunedOp, register_tuner
from petl_vision.tuners.registry import TUNERS
from tests.conftest import tiny_swin, tiny_vit
from tests.tuners.test_generic_suite import perturb

STACK_PRESETS = ['vpt_shallow', 'bypass']
PRESETS = [p for p in pv.list_presets() if p not in ('linear', 'full')]
BUILDERS = {'vit': tiny_vit, 'swin': tiny_swin}


def tuned(preset: str, backbone: str = 'vit'):
    model = pv.apply_tuners(BUILDERS[backbone]().eval(), preset, trainable=('head',))
    perturb(model)
    return model


@pytest.mark.parametrize('backbone', sorted(BUILDERS))
@pytest.mark.parametrize('preset', PRESETS)
def test_forward_intermediates_sees_the_tuners(preset, backbone, images):
    model = tuned(preset, backbone)
    final, intermediates = model.forward_intermediates(images)
    torch.testing.assert_close(final, model.forward_features(images), rtol=0, atol=1e-6)
    frozen = BUILDERS[backbone]().eval()
    _, frozen_maps = frozen.forward_intermediates(images)
    assert [m.shape for m in intermediates] == [m.shape for m in frozen_maps]  # prompts never leak into the maps
    assert not torch.allclose(final, frozen.forward_features(images))


@pytest.mark.parametrize('preset', STACK_PRESETS + ['vpt_deep'])
def test_stack_methods_change_the_intermediate_maps_where_the_method_does(preset, images):
    model = tuned(preset)
    _, maps = model.forward_intermediates(images)
    _, frozen = tiny_vit().eval().forward_intermediates(images)
    changed = [not torch.allclose(a, b) for a, b in zip(maps, frozen)]
    # VPT: every block sees the prompts; Bypass: the blocks run frozen, the side network replaces the last output
    assert changed == ([False, True] if preset == 'bypass' else [True, True])


@pytest.mark.parametrize('backbone', sorted(BUILDERS))
@pytest.mark.parametrize('preset', PRESETS)
def test_gradient_checkpointing_gives_the_tuned_loss_and_grads(preset, backbone, images):
    labels = torch.tensor([1, 3])
    results = []
    for checkpointing in (False, True):
        model = tuned(preset, backbone)
        for m in model.modules():  # Swin's default stochastic depth would make the two runs differ
            if hasattr(m, 'drop_prob'):
                m.drop_prob = 0.0
        model.train()
        model.set_grad_checkpointing(checkpointing)
        loss = torch.nn.functional.cross_entropy(model(images), labels)
        loss.backward()
        results.append((loss.detach(), {n: p.grad for n, p in model.named_parameters() if p.requires_grad}))
    (loss, grads), (ckpt_loss, ckpt_grads) = results
    torch.testing.assert_close(ckpt_loss, loss, rtol=0, atol=1e-6)
    assert len(grads) > 2  # tuners (or selected backbone tensors) besides the head
    for name, grad in grads.items():
        torch.testing.assert_close(ckpt_grads[name], grad, rtol=1e-5, atol=1e-6, msg=name)


@pytest.mark.parametrize('preset', ['vpt_shallow', 'vpt_deep', 'lora'])
def test_attention_masks_reach_tuned_blocks_padded_for_prompts(preset, images):
    model = tuned(preset)
    n = 1 + 16  # class token + 4 x 4 patches
    allowed = torch.zeros(n, n)
    torch.testing.assert_close(model.forward_features(images, attn_mask=allowed), model.forward_features(images),
                               rtol=0, atol=1e-5)
    blocked = allowed.clone()
    blocked[:, 5:] = float('-inf')  # the patches after the fourth are hidden from every query
    assert not torch.allclose(model.forward_features(images, attn_mask=blocked), model.forward_features(images))


def test_no_tuner_wraps_a_block_stack():
    with pytest.raises(ValueError, match=r"'blocks' is a Sequential .* target its blocks instead \(blocks\.\*\)"):
        pv.apply_tuners(tiny_vit(), [{'type': 'Adapter', 'targets': 'blocks', 'placement': 'parallel'}])
    for preset in STACK_PRESETS:
        assert not any(isinstance(op.base, torch.nn.Sequential) for op in pv.tuners.tuned_ops(tuned(preset)))


def test_a_deep_copy_of_a_model_after_a_forward_pass_works(images):
    model = tuned('vpt_shallow')
    model(images).sum().backward()
    clone = copy.deepcopy(model)
    torch.testing.assert_close(clone(images), model(images))


def test_carried_state_lost_between_blocks_is_an_error(images):
    model = tuned('vpt_shallow')
    x = model.patch_embed(images)
    x = model._pos_embed(x)
    x = model.blocks[0](x) * 1.0  # a new tensor: the carried prompt is not attached to it
    with pytest.raises(RuntimeError, match="'blocks.1' expects the value of 'default/vpt'"):
        model.blocks[1](x)


# merge / unmerge ------------------------------------------------------------------------------------------------
STACKED = {
    'ssf+ssf': [{'type': 'SSF', 'targets': 'blocks.*.attn.qkv', 'name': 's1'},
                {'type': 'SSF', 'targets': 'blocks.*.attn.qkv', 'name': 's2'}],
    'lora+lora': [{'type': 'LoRA', 'targets': 'blocks.*.attn.qkv', 'name': 'l1'},
                  {'type': 'LoRA', 'targets': 'blocks.*.attn.qkv', 'name': 'l2', 'rank': 2}],
    'lora+ssf': [{'type': 'LoRA', 'targets': 'blocks.*.mlp.fc1'}, {'type': 'SSF', 'targets': 'blocks.*.mlp.fc1'}],
    'ssf+lora': [{'type': 'SSF', 'targets': 'blocks.*.mlp.fc1'}, {'type': 'LoRA', 'targets': 'blocks.*.mlp.fc1'}],
    'ssf+adapter(linear)': [{'type': 'SSF', 'targets': 'blocks.*.mlp.fc2'},
                            {'type': 'Adapter', 'targets': 'blocks.*.mlp.fc2', 'act': 'identity'}],
    'adapter(linear)+ssf+lora': [{'type': 'Adapter', 'targets': 'blocks.*.attn.proj', 'act': 'identity'},
                                 {'type': 'SSF', 'targets': 'blocks.*.attn.proj'},
                                 {'type': 'LoRA', 'targets': 'blocks.*.attn.proj'}],
    'ta+ssf': [{'type': 'TA', 'targets': 'blocks.*.mlp.fc2', 'init_scale': 1e-2},
               {'type': 'SSF', 'targets': 'blocks.*.mlp.fc2'}],
}


@pytest.mark.parametrize('case', sorted(STACKED))
def test_stacked_tuners_merge_to_the_unmerged_output_and_unmerge_bit_for_bit(case, images):
    model = pv.apply_tuners(tiny_vit().eval(), STACKED[case], trainable=('head',))
    with torch.no_grad():  # large moves, so an unmerge in the wrong order shows (two SSF were off by ~20)
        for p in model.parameters():
            if p.requires_grad:
                p.add_(torch.randn(p.shape, generator=torch.Generator().manual_seed(5)) * 0.5)
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    expected = model(images)
    pv.merge_tuners(model)
    torch.testing.assert_close(model(images), expected, rtol=1e-4, atol=1e-4)
    pv.unmerge_tuners(model)
    after = model.state_dict()
    assert after.keys() == weights.keys()
    for k, v in weights.items():
        assert torch.equal(after[k], v), k
    assert torch.equal(model(images), expected)


def test_merge_and_unmerge_twice_leaves_the_weights_unchanged(images):
    model = tuned('ssf')
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    for _ in range(2):
        pv.merge_tuners(model)
        pv.unmerge_tuners(model)
    assert all(torch.equal(model.state_dict()[k], v) for k, v in weights.items())


# placements -----------------------------------------------------------------------------------------------------
def test_a_misspelled_placement_is_refused_when_the_class_is_defined():
    with pytest.raises(ValueError, match="placement 'paralel' is not one of parallel, sequential, prompt, side"):
        class Misspelled(Tuner):  # noqa: F841
            type_name = 'Misspelled'
            placement = 'paralel'


def test_a_misspelled_placement_in_a_config_is_refused(images):
    @dataclasses.dataclass
    class LooseConfig(TunerConfig):
        placement: str = 'parallel'  # a third-party config without a choice check

    class Loose(Tuner):
        type_name = 'LooseTest'
        config_cls = LooseConfig

        def forward(self, x):
            return x

        @classmethod
        def default_targets(cls, spec):
            return 'blocks.*.mlp'

    register_tuner(Loose)
    try:
        with pytest.raises(ValueError, match="placement 'paralel' is not one of"):
            pv.apply_tuners(tiny_vit(), [{'type': 'LooseTest', 'placement': 'paralel'}])
    finally:
        TUNERS.pop('LooseTest')


# transactional apply --------------------------------------------------------------------------------------------
BAD_SECOND_ENTRIES = {
    'unknown type': {'type': 'LoRAA', 'targets': 'blocks.*.attn.qkv'},
    'unknown key': {'type': 'LoRA', 'targets': 'blocks.*.attn.qkv', 'rnak': 4},
    'no target': {'type': 'LoRA', 'targets': 'blocks.*.atn.qkv'},
    'wrong op kind': {'type': 'LoRA', 'targets': 'blocks.*.mlp'},
    'same name on one op': {'type': 'SSF', 'targets': 'blocks.*.attn.qkv', 'name': 'lora'},
    'partner missing': {'type': 'InternalPrompt', 'targets': 'blocks.*'},
    'bad trainable': None,
}


@pytest.mark.parametrize('case', sorted(BAD_SECOND_ENTRIES))
def test_a_bad_plan_leaves_the_model_untouched_and_a_retry_works(case, images):
    model = tiny_vit()
    before = {n: (p.requires_grad, p.clone()) for n, p in model.named_parameters()}
    modules = [type(m) for m in model.modules()]
    plan = [{'type': 'LoRA', 'targets': 'blocks.*.attn.qkv'}]
    entry = BAD_SECOND_ENTRIES[case]
    with pytest.raises((ValueError, KeyError, TypeError)):
        pv.apply_tuners(model, plan + ([entry] if entry else []), trainable=('heda',) if entry is None else ())
    assert [type(m) for m in model.modules()] == modules and not hasattr(model, 'petl_plan')
    assert {n: p.requires_grad for n, p in model.named_parameters()} == {n: g for n, (g, _) in before.items()}
    pv.apply_tuners(model, plan, trainable=('head',))  # the retry: no "already has a tuner"
    assert pv.count_parameters(model)['trainable'] == 2 * (8 * 64 + 192 * 8) + 5 * 64 + 5  # LoRA A, B; head


# activation, reset, scratch ----------------------------------------------------------------------------------
def test_tuners_switch_off_and_on_by_name(images):
    model = pv.apply_tuners(tiny_vit().eval(), [{'type': 'LoRA', 'targets': 'blocks.*.attn.qkv'},
                                               {'type': 'SSF', 'targets': 'blocks.*.mlp.fc2'}])
    perturb(model)
    both = model(images)
    pv.set_tuners_active(model, ['ssf'], False)
    assert pv.active_tuners(model) == ['lora']
    only_lora = pv.apply_tuners(tiny_vit().eval(), [{'type': 'LoRA', 'targets': 'blocks.*.attn.qkv'}])
    only_lora.load_state_dict(model.state_dict(), strict=False)
    torch.testing.assert_close(model(images), only_lora(images))
    pv.set_tuners_active(model, ['ssf'], True)
    torch.testing.assert_close(model(images), both)
    with pytest.raises(ValueError, match=r"no tuner named \['sff'\] is attached; attached: \['lora', 'ssf'\]"):
        pv.set_tuners_active(model, ['sff'], False)


def test_reset_returns_tuners_to_their_state_at_attach_time(images):
    model = pv.apply_tuners(tiny_vit().eval(), 'lora')
    initial = model(images)
    perturb(model)
    assert not torch.allclose(model(images), initial)
    pv.reset_tuners(model)
    torch.testing.assert_close(model(images), initial, rtol=0, atol=0)


def test_dapt_hands_its_adapter_output_through_the_call_scratch_not_the_module(images):
    from tests.conftest import tiny_point
    pts = torch.randn(2, 64, 3, generator=torch.Generator().manual_seed(0))
    for plan in (pv.tuners.dapt.dapt_plan(rank=4, ssf=False), [{'type': 'DynamicAdapter', 'dim': 4}]):
        model = pv.apply_tuners(tiny_point().eval(), plan)
        perturb(model)
        model(pts).sum().backward()
        assert not any(isinstance(v, torch.Tensor) and v.grad_fn is not None
                       for m in model.modules() for v in vars(m).values())
        torch.testing.assert_close(copy.deepcopy(model)(pts), model(pts))  # failed with a graph on the module


def test_tuners_package_imports_nothing_from_backbones_models_datasets_or_mmengine():
    import ast
    import pathlib

    root = pathlib.Path(pv.__file__).parent / 'tuners'
    bad = []
    for path in root.glob('*.py'):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                module = ('.' * node.level) + (node.module or '')
            elif isinstance(node, ast.Import):
                module = ','.join(a.name for a in node.names)
            else:
                continue
            if any(f in module for f in ('backbones', 'models', 'datasets', 'mmengine', 'engine')):
                bad.append(f'{path.name}: {module}')
    assert not bad, bad


def test_tuned_ops_know_their_chain_position():
    model = tuned('bypass')
    ops = [m for m in model.blocks if isinstance(m, TunedOp)]
    tuners = [op.tuners['default']['bypass'] for op in ops]
    assert [(t.chain_index, t.chain_length) for t in tuners] == [(0, 2), (1, 2)]


@pytest.mark.parametrize('entry,message', [
    ({'type': 'LoRA', 'rank': 2.5}, 'LoRA rank must be int, got 2.5'),
    ({'type': 'VPT', 'num_tokens': '10'}, "VPT num_tokens must be int, got '10'"),
    ({'type': 'Adapter', 'scale': 'big'}, "Adapter scale must be float, got 'big'"),
])
def test_mistyped_config_values_are_named(entry, message):
    with pytest.raises(TypeError, match=message):
        pv.apply_tuners(tiny_vit(), [entry])


def test_ints_are_accepted_for_float_fields(images):
    model = pv.apply_tuners(tiny_vit(), [{'type': 'LoRA', 'alpha': 16}, {'type': 'Adapter', 'scale': 1}])
    assert model(images).shape == (2, 5)


# every pair of mergeable tuner types stacked on one Linear op (new mergeable types join by registering)
MERGE_SETTINGS = {'Adapter': {'act': 'identity'}, 'AdaptFormer': {'act': 'identity'}, 'TA': {'init_scale': 1e-2}}
LINEAR_OP = 'blocks.*.attn.proj'  # 64 -> 64: parallel and sequential tuners both fit


def _mergeable_types() -> list[str]:
    found = []
    for name, cls in sorted(TUNERS.items()):
        if issubclass(cls, pv.tuners.ParameterSelection):
            continue
        entry = {'type': name, 'targets': LINEAR_OP, **MERGE_SETTINGS.get(name, {})}
        try:
            model = pv.apply_tuners(tiny_vit(), [entry])
        except (ValueError, TypeError, KeyError):
            continue  # not a Linear-op tuner
        if all(row['mergeable'] for row in pv.describe_tuners(model)):
            found.append(name)
    return found


MERGEABLE = _mergeable_types()


def test_the_mergeable_types_are_found():
    assert {'LoRA', 'SSF', 'Adapter', 'AdaptFormer', 'TA', 'BiasDelta', 'LinearDelta'} <= set(MERGEABLE)


@pytest.mark.parametrize('second', MERGEABLE)
@pytest.mark.parametrize('first', MERGEABLE)
def test_every_mergeable_pair_merges_exactly_and_unmerges_bit_for_bit(first, second, images):
    plan = [{'type': t, 'targets': LINEAR_OP, 'name': f'{t.lower()}{i}', **MERGE_SETTINGS.get(t, {})}
            for i, t in enumerate((first, second))]
    model = pv.apply_tuners(tiny_vit().eval(), plan, trainable=('head',))
    perturb(model)
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    expected = model(images)
    pv.merge_tuners(model)
    torch.testing.assert_close(model(images), expected, rtol=1e-4, atol=1e-4)
    pv.unmerge_tuners(model)
    assert all(torch.equal(model.state_dict()[k], v) for k, v in weights.items())
    assert torch.equal(model(images), expected)
