"""tools/publish.py on a real tiny run: the released file is named by its own sha256, holds exactly the trained
tuners (from the work dir or rebuilt from a Runner checkpoint) and loads onto a fresh backbone."""
import hashlib
import sys
from pathlib import Path

import pytest
import timm
import torch
from safetensors.torch import save_file

from petl_vision.tuners import load_tuners, read_tuner_file
from tests.engine.tiny_run import build_runner, tiny_config
from tests.conftest import load_tool


@pytest.fixture(scope='module')
def tool():
    return load_tool('publish.py')


@pytest.fixture(scope='module')
def run(tmp_path_factory):
    """One epoch (8 iterations), Runner checkpoints at 4 and 8, tuner files from TunerCheckpointHook."""
    work_dir = tmp_path_factory.mktemp('run')
    runner = build_runner(tiny_config(work_dir, max_epochs=1, checkpoint_every=4,
                                      custom_hooks=[dict(type='TunerCheckpointHook', save_best='accuracy/top1')]))
    runner.train()
    return runner, work_dir


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_hook_writes_a_tuner_file_with_every_runner_checkpoint_and_for_the_best(run):
    _, work_dir = run
    assert {p.name for p in work_dir.glob('tuners_*.safetensors')} == {
        'tuners_iter_4.safetensors', 'tuners_iter_8.safetensors', 'tuners_latest.safetensors',
        'tuners_best.safetensors'}
    assert (work_dir / 'iter_4.pth').is_file() and (work_dir / 'iter_8.pth').is_file()
    assert (work_dir / 'tuners_best.json').is_file()


def test_publish_work_dir_names_the_file_by_its_sha256_and_it_reproduces_the_model(tool, run, tmp_path, capsys):
    runner, work_dir = run
    sys.argv = ['publish.py', str(work_dir), 'lora_tiny.digits', '--out-dir', str(tmp_path)]
    tool.main()
    path_line, sha_line = capsys.readouterr().out.split('\n')[:2]
    path = Path(path_line)
    assert sha_line == f'sha256 {sha256(path)}' and path.name == f'lora_tiny.digits-{sha256(path)[:8]}.safetensors'
    assert path.read_bytes() == (work_dir / 'tuners_best.safetensors').read_bytes()
    assert list(tmp_path.iterdir()) == [path]  # no staging leftovers

    fresh = timm.create_model('vit_tiny_patch16_224', img_size=32, patch_size=8, embed_dim=64, depth=2, num_heads=2,
                              num_classes=10)
    frozen = {k.replace('.base.', '.'): v for k, v in runner.model.backbone.state_dict().items()
              if '.tuners.' not in k and not k.startswith('head')}  # the run's frozen (random) backbone weights
    assert fresh.load_state_dict(frozen, strict=False).missing_keys == ['head.weight', 'head.bias']
    load_tuners(fresh, path)
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    runner.model.eval()
    torch.testing.assert_close(fresh.eval()(x), runner.model.backbone(x), rtol=0, atol=1e-6)


def test_publish_runner_checkpoint_rebuilds_the_model_and_takes_its_tuners(tool, run, tmp_path):
    _, work_dir = run
    path, digest = tool.publish(work_dir / 'iter_4.pth', 'lora_tiny.iter4', tmp_path)
    assert digest == sha256(path) and path.name == f'lora_tiny.iter4-{digest[:8]}.safetensors'
    meta, tensors = read_tuner_file(path)
    _, at_checkpoint = read_tuner_file(work_dir / 'tuners_iter_4.safetensors')  # written when iter_4.pth was
    assert tensors.keys() == at_checkpoint.keys() and len(tensors) == 6
    for name, value in at_checkpoint.items():
        assert torch.equal(tensors[name], value), name
    assert meta['extra']['source'] == 'iter_4.pth' and "type='LoRA'" in meta['extra']['config']


def test_publish_refuses_bad_input_with_a_reason(tool, run, tmp_path):
    _, work_dir = run
    with pytest.raises(ValueError, match='must be letters, digits'):
        tool.publish(work_dir, 'bad name/..', tmp_path)
    (tmp_path / 'empty').mkdir()
    with pytest.raises(FileNotFoundError, match='has no tuners_best.safetensors or tuners_latest'):
        tool.publish(tmp_path / 'empty', 'x', tmp_path / 'out')
    torch.save({'weight': torch.zeros(2)}, tmp_path / 'plain.pth')
    with pytest.raises(ValueError, match='is not a Runner checkpoint'):
        tool.publish(tmp_path / 'plain.pth', 'x', tmp_path / 'out')
    save_file({'weight': torch.zeros(2)}, str(tmp_path / 'plain.safetensors'))
    with pytest.raises(ValueError, match='not a petl_vision tuner file'):
        tool.publish(tmp_path / 'plain.safetensors', 'x', tmp_path / 'out')
    assert list((tmp_path / 'out').iterdir()) == []
