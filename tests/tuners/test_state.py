"""Tuner files: a digest of the tensors checked on load, atomic writes with the normal umask, format-1 files
migrated (issue: a bit-flipped file loaded and gave non-finite outputs; files were written 0600)."""
import json
import os
import stat

import pytest
import torch
from safetensors.torch import save_file

import petl_vision as pv
from petl_vision.tuners.state import FILE_FORMAT, backbone_fingerprint, read_tuner_file
from tests.conftest import tiny_vit
from tests.tuners.test_generic_suite import perturb


def saved(tmp_path, preset='lora'):
    model = pv.apply_tuners(tiny_vit().eval(), preset, trainable=('head',))
    perturb(model)
    return model, pv.save_tuners(model, tmp_path / 'tuners.safetensors')


def test_a_bit_flipped_file_is_refused_by_name(tmp_path):
    _, path = saved(tmp_path)
    data = bytearray(path.read_bytes())
    data[-7] ^= 0x40  # a bit in the last tensor's bytes
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=rf'{path.name} is damaged: its tensors do not match the digest'):
        pv.load_tuners(tiny_vit(), path)


def test_files_are_written_with_the_umask_and_leave_no_temporary_file(tmp_path):
    old = os.umask(0o022)
    try:
        _, path = saved(tmp_path)
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == ['tuners.safetensors']


def test_a_failed_save_keeps_the_previous_file(tmp_path, monkeypatch):
    model, path = saved(tmp_path)
    before = path.read_bytes()

    def killed(*args, **kwargs):
        raise KeyboardInterrupt  # stands in for a kill in the middle of writing

    monkeypatch.setattr(os, 'fsync', killed)
    with pytest.raises(KeyboardInterrupt):
        pv.save_tuners(model, path)
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ['tuners.safetensors']


def test_a_file_that_does_not_fit_leaves_a_fresh_backbone_untouched(tmp_path):
    _, path = saved(tmp_path)
    meta, tensors = read_tuner_file(path)
    tensors.popitem()
    save_file(tensors, str(tmp_path / 'short.safetensors'),
              metadata={'format': FILE_FORMAT, **{k: json.dumps(meta[k]) for k in ('plan', 'trainable', 'backbone',
                                                                                    'extra')}})
    fresh = tiny_vit()
    with pytest.raises(ValueError, match='does not fit this model: missing'):
        pv.load_tuners(fresh, tmp_path / 'short.safetensors')
    assert not hasattr(fresh, 'petl_plan') and not pv.tuners.tuned_ops(fresh)
    assert all(p.requires_grad for p in fresh.parameters())


@pytest.mark.parametrize('preset', ['vpt_shallow', 'bypass'])
def test_format_1_files_of_stack_methods_load_onto_the_per_block_layout(preset, tmp_path, images):
    """Format 1 put VPT-shallow's tokens and the Bypass's adapters on the ``blocks`` stack."""
    model, path = saved(tmp_path, preset)
    meta, tensors = read_tuner_file(path)
    old_plan = [dict(e, targets='blocks') for e in meta['plan']]
    for e in old_plan:
        e.pop('shallow', None)
    old = {}
    for key, t in tensors.items():
        if key.startswith('blocks.'):
            _, index, _, name, rest = key.split('.', 4)  # blocks.<i>.tuners.<name>.<rest>
            if rest == 'tokens':
                key = f'blocks.tuners.{name}.tokens'
            else:
                part, leaf = rest.split('.', 1)
                key = f'blocks.tuners.{name}.{part}.{index}.{leaf}'
        old[key] = t
    save_file(old, str(tmp_path / 'v1.safetensors'), metadata={
        'format': 'petl_vision.tuners/1', 'plan': json.dumps(old_plan), 'trainable': json.dumps(['head']),
        'backbone': json.dumps(backbone_fingerprint(model)), 'extra': '{}'})
    fresh = pv.load_tuners(tiny_vit().eval(), tmp_path / 'v1.safetensors')
    assert fresh.petl_plan == model.petl_plan
    assert torch.equal(fresh(images), model(images))
