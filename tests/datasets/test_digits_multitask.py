"""DigitsMultiTask: domains, held-out splits, task label spaces, shots, the packed task field."""
import numpy as np
import pytest
import torch
from mmengine.dataset import default_collate
from mmengine.registry import DefaultScope

from petl_vision.datasets import DigitsMultiTask, PackInputs
from petl_vision.datasets.digits import digits_arrays
from petl_vision.datasets.digits_multitask import DOMAINS, LOOPS, SPLITS, TASKS, domain_images, task_label
from petl_vision.demo import _pools, digits_images, shift_to_target
from petl_vision.models.classifier import ImageClassifier
from petl_vision.registry import DATASETS

TINY = dict(model='vit_tiny_patch16_224', pretrained=None, img_size=32, patch_size=8, embed_dim=64, depth=2,
            num_heads=2, num_classes=2)


def source_ids(ds) -> list[int]:
    return [ds.get_data_info(i)['source_idx'] for i in range(len(ds))]


def test_every_image_in_exactly_one_domain_and_split_with_these_sizes():
    sizes, seen = {}, []
    for split in SPLITS:
        for domain in DOMAINS:
            ids = source_ids(DigitsMultiTask(task='digit', domain=domain, split=split))
            sizes[split, domain] = len(ids)
            seen += ids
    assert len(seen) == len(set(seen)) == 1797
    assert {sizes['val', d] for d in DOMAINS} == {20} and {sizes['test', d] for d in DOMAINS} == {50}
    assert {sizes['train', d] for d in DOMAINS} == {109, 110, 111}
    assert sum(sizes['train', d] for d in DOMAINS) == 1097


def test_held_out_splits_come_from_images_the_demo_backbones_never_saw():
    source, target = _pools(digits_arrays(32)[1])
    train = set(source_ids(DigitsMultiTask(domain='all', split='train')))
    held = set(source_ids(DigitsMultiTask(domain='all', split='val'))) | set(
        source_ids(DigitsMultiTask(domain='all', split='test')))
    assert train == set(source.tolist()) and held == set(target.reshape(-1).tolist())


def test_each_domain_has_every_digit_in_every_split():
    test = DigitsMultiTask(task='digit', domain='noisy', split='test')
    val = DigitsMultiTask(task='digit', domain='noisy', split='val')
    assert np.bincount([test.get_data_info(i)['digit'] for i in range(len(test))]).tolist() == [5] * 10
    assert np.bincount([val.get_data_info(i)['digit'] for i in range(len(val))]).tolist() == [2] * 10


def test_task_label_spaces():
    assert LOOPS == (1, 0, 0, 0, 1, 0, 1, 0, 2, 1)
    assert [task_label('parity', d) for d in range(10)] == [0, 1] * 5
    assert [task_label('at_least_5', d) for d in range(10)] == [0] * 5 + [1] * 5
    assert {t: len(c) for t, c in TASKS.items()} == {'digit': 10, 'parity': 2, 'at_least_5': 2, 'loops': 3}
    ds = DigitsMultiTask(task='loops', domain='upright', split='test')
    infos = [ds.get_data_info(i) for i in range(len(ds))]
    assert all(info['gt_label'] == LOOPS[info['digit']] and info['task'] == 'loops' for info in infos)
    assert np.bincount([info['gt_label'] for info in infos]).tolist() == [25, 20, 5]
    assert ds.metainfo['classes'] == ('0_loops', '1_loop', '2_loops')


def test_tasks_share_a_domains_images():
    digit = DigitsMultiTask(task='digit', domain='thin', split='val')
    parity = DigitsMultiTask(task='parity', domain='thin', split='val')
    assert sorted(source_ids(digit)) == sorted(source_ids(parity))


def test_domain_images():
    idx = np.arange(40)
    up = domain_images('upright', idx)
    assert up.shape == (40, 3, 32, 32) and up.dtype == np.uint8
    assert np.array_equal(up, digits_images()[0][idx])
    assert np.array_equal(domain_images('rotated_30', idx), shift_to_target(up))  # the quick start's target shift
    assert np.array_equal(domain_images('rotated_90', idx), np.rot90(up, 1, axes=(2, 3)))  # counter-clockwise
    assert np.array_equal(domain_images('inverted', idx), 255 - up)
    thick, thin = domain_images('thick', idx).astype(int), domain_images('thin', idx).astype(int)
    assert (thick >= up).all() and (thin <= up).all()
    assert thick.mean() - up.mean() > 15 and up.mean() - thin.mean() > 15
    shifted = domain_images('shifted', idx)
    assert np.array_equal(shifted[..., 6:], up[..., :-6]) and (shifted[..., :6] == 0).all()
    blurred = domain_images('blurred', idx).astype(float)
    assert abs(blurred.mean() - up.mean()) < 1 and np.abs(np.diff(blurred, axis=3)).mean() < np.abs(
        np.diff(up.astype(float), axis=3)).mean()
    noise = domain_images('noisy', idx).astype(float) - up
    inside = (up > 64) & (up < 192)  # no clipping
    assert 55 < noise[inside].std() < 70
    assert np.array_equal(domain_images('noisy', idx[5:9]), domain_images('noisy', idx)[5:9])  # fixed per image


def test_seed_draws_another_split_and_the_registry_refuses_mixing_seeds():
    test0 = DigitsMultiTask(domain='upright', split='test', seed=0)
    test1 = DigitsMultiTask(domain='upright', split='test', seed=1)
    assert len(test1) == 50 and set(source_ids(test0)) != set(source_ids(test1))
    with pytest.raises(ValueError, match='held-out data would be trained on'):
        # train never meets val/test (different pools), but seed 1's val holds some of seed 0's test images
        DigitsMultiTask(domain='all', split='val', seed=1)


def test_shots_per_class_are_nested_and_spread_over_digits():
    five = DigitsMultiTask(task='parity', domain=['blurred', 'shifted'], split='train', shots=5)
    three = DigitsMultiTask(task='parity', domain=['blurred', 'shifted'], split='train', shots=3)
    infos = [five.get_data_info(i) for i in range(len(five))]
    assert len(five) == 2 * 2 * 5 and len(three) == 2 * 2 * 3
    assert set(source_ids(three)) < set(source_ids(five))
    for domain in ('blurred', 'shifted'):
        digits = sorted(i['digit'] for i in infos if i['domain'] == domain)
        assert digits == list(range(10))  # 5 even shots: one each of 0, 2, 4, 6, 8; 5 odd likewise
    with pytest.raises(ValueError, match=r"fewer than shots=20; use shots <= 1[01]"):
        DigitsMultiTask(task='loops', domain='upright', split='train', shots=20)  # 2 loops: only the eights
    with pytest.raises(ValueError, match="limits the 'train' split only"):
        DigitsMultiTask(split='test', shots=5)


@pytest.mark.parametrize('kwargs, message', [
    (dict(task='colour'), "unknown DigitsMultiTask task 'colour'"),
    (dict(domain='rotated_45'), 'domain must be one of'),
    (dict(domain=['thin', 'thin']), 'distinct'),
    (dict(split='trainval'), 'split must be one of'),
    (dict(shots=0), 'positive int'),
])
def test_bad_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DigitsMultiTask(**kwargs)


def test_packed_samples_carry_the_task_and_collate_to_names():
    with DefaultScope.overwrite_default_scope('petl_vision'):
        ds = DATASETS.build(dict(type='DigitsMultiTask', task='at_least_5', domain='inverted', split='val',
                                 pipeline=[dict(type='PackInputs')]))
    batch = default_collate([ds[i] for i in range(4)])
    assert batch['task'] == ['at_least_5'] * 4
    assert batch['inputs'].shape == (4, 3, 32, 32) and batch['data_samples'].dtype == torch.int64
    assert 'task' not in PackInputs()({'img': torch.zeros(3, 2, 2, dtype=torch.uint8), 'gt_label': 1})


def test_image_classifier_ignores_a_single_task_and_refuses_mixed_tasks():
    ds = DigitsMultiTask(task='parity', domain='upright', split='val', pipeline=[PackInputs()])
    model = ImageClassifier(backbone=TINY)
    batch = model.data_preprocessor(default_collate([ds[i] for i in range(6)]))
    assert batch['task'] == ['parity'] * 6
    assert model(**batch, mode='loss')['loss'].item() > 0
    batch['task'][2] = 'digit'
    with pytest.raises(ValueError, match=r"mixes tasks \['digit', 'parity'\].*one head"):
        model(**batch, mode='loss')
