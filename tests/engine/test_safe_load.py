"""Safe checkpoint loading: mmengine resume works under weights_only, anything else pickled is refused."""
import os
import pickle
import uuid

import numpy as np
import pytest
import torch
from mmengine.evaluator import BaseMetric
from mmengine.logging.history_buffer import HistoryBuffer
from mmengine.model import BaseModel
from mmengine.runner import CheckpointLoader, Runner, load_checkpoint
from safetensors.torch import save_file
from torch import nn

from petl_vision.engine.safe_load import (CorruptCheckpointError, UnsafeCheckpointError, patch_mmengine_resume,
                                          safe_load, safe_torch_load)


class ToyModel(BaseModel):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 2)

    def forward(self, inputs, labels, mode='tensor'):
        logits = self.fc(inputs)
        if mode == 'loss':
            return {'loss': nn.functional.cross_entropy(logits, labels)}
        return list(zip(logits.argmax(1), labels))


class NumpyAccuracy(BaseMetric):
    """Returns numpy scalars, as many metrics do: they end up pickled in the message hub."""

    def process(self, data_batch, data_samples):
        self.results.extend(int(p == t) for p, t in data_samples)

    def compute_metrics(self, results):
        return {'acc': np.float64(np.mean(results)), 'n': np.int64(len(results)), 'acc32': np.float32(0.5)}


def toy_loader() -> dict:
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(16, 4, generator=g), torch.randint(0, 2, (16,), generator=g)
    return dict(dataset=[dict(inputs=a, labels=b) for a, b in zip(x, y)], batch_size=4,
                sampler=dict(type='DefaultSampler', shuffle=True), collate_fn=dict(type='default_collate'))


def toy_runner(work_dir, max_iters: int, **kwargs) -> Runner:
    torch.manual_seed(0)
    # a unique experiment_name: runners started in the same second would otherwise share one MessageHub
    return Runner(model=ToyModel(), work_dir=str(work_dir), experiment_name=f'toy_{uuid.uuid4().hex[:8]}',
                  train_dataloader=toy_loader(),
                  val_dataloader=toy_loader(), val_evaluator=[NumpyAccuracy()], val_cfg=dict(),
                  optim_wrapper=dict(optimizer=dict(type='AdamW', lr=0.1)),
                  param_scheduler=dict(type='LinearLR', by_epoch=False, begin=0, end=4),
                  train_cfg=dict(by_epoch=False, max_iters=max_iters, val_interval=1),
                  default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=2, by_epoch=False),
                                     logger=dict(type='LoggerHook', interval=1)),
                  randomness=dict(seed=0), log_level='WARNING', **kwargs)


@pytest.fixture
def patched(monkeypatch):
    """patch_mmengine_resume() on a copy of mmengine's scheme table, restored after the test."""
    monkeypatch.setattr(CheckpointLoader, '_schemes', dict(CheckpointLoader._schemes))
    patch_mmengine_resume()


def test_runner_resume_matches_an_uninterrupted_run(tmp_path, patched):
    straight = toy_runner(tmp_path / 'straight', max_iters=4)
    straight.train()
    first_half = toy_runner(tmp_path / 'first', max_iters=2)
    first_half.train()
    checkpoint = tmp_path / 'first' / 'iter_2.pth'
    with pytest.raises(pickle.UnpicklingError, match='HistoryBuffer'):  # why the patch exists
        torch.load(checkpoint, weights_only=True)

    resumed = toy_runner(tmp_path / 'resumed', max_iters=4, load_from=str(checkpoint), resume=True)
    resumed.train()

    assert resumed.iter == 4
    # the history came back from the checkpoint: val after iter 1 (iter 2's val runs after the checkpoint is saved)
    straight_acc = straight.message_hub.get_scalar('val/acc').data[0].tolist()
    assert resumed.message_hub.get_scalar('val/acc').data[0].tolist() == [straight_acc[0], *straight_acc[2:]]
    for name, value in straight.model.state_dict().items():
        torch.testing.assert_close(resumed.model.state_dict()[name], value)


def test_loads_numpy_one_spellings_and_history_buffer_statistics(tmp_path):
    buffer = HistoryBuffer([1.0, 3.0], [1, 1])
    torch.save({'hub': {'loss': buffer, 'stats': {'mean': HistoryBuffer.mean}}}, tmp_path / 'hub.pth')
    loaded = safe_torch_load(tmp_path / 'hub.pth')
    assert loaded['hub']['loss'].mean() == 2.0
    assert loaded['hub']['stats']['mean'] is HistoryBuffer.mean


class Custom:
    pass


def test_custom_class_is_refused(tmp_path):
    torch.save({'state_dict': {'w': torch.ones(2)}, 'extra': Custom()}, tmp_path / 'custom.pth')
    with pytest.raises(UnsafeCheckpointError, match=r'refusing to unpickle `\S*Custom` from .*custom\.pth; only '
                                                    'weights and mmengine training state are allowed'):
        safe_torch_load(tmp_path / 'custom.pth')


class GetattrOf:
    def __init__(self, owner, name):
        self.owner, self.name = owner, name

    def __reduce__(self):
        return getattr, (self.owner, self.name)


@pytest.mark.parametrize('owner,name', [(HistoryBuffer, '__init__'), (np.ndarray, 'tofile')])
def test_getattr_reaches_only_history_buffer_methods(tmp_path, owner, name):
    torch.save({'x': GetattrOf(owner, name)}, tmp_path / 'getattr.pth')
    with pytest.raises(UnsafeCheckpointError, match=f'refusing to unpickle `getattr.*{name}'):
        safe_torch_load(tmp_path / 'getattr.pth')


@pytest.mark.parametrize('legacy', [False, True])
def test_truncated_file_is_reported_as_corrupt(tmp_path, legacy):
    torch.save({'w': torch.randn(64, 64)}, tmp_path / 'full.pth', _use_new_zipfile_serialization=not legacy)
    data = (tmp_path / 'full.pth').read_bytes()
    (tmp_path / 'cut.pth').write_bytes(data[:len(data) - 100])
    with pytest.raises(CorruptCheckpointError, match=r'checkpoint .*cut\.pth is truncated or corrupt: .*re-download'):
        safe_torch_load(tmp_path / 'cut.pth')


def test_non_checkpoint_is_reported_as_corrupt(tmp_path):
    (tmp_path / 'page.pth').write_bytes(b'<html>404 not found</html>')
    with pytest.raises(CorruptCheckpointError, match='truncated or corrupt'):
        safe_torch_load(tmp_path / 'page.pth')


def test_missing_file_says_so(tmp_path):
    with pytest.raises(FileNotFoundError, match='nothing.pth does not exist'):
        safe_torch_load(tmp_path / 'nothing.pth')


def test_patched_mmengine_loads_local_pth_and_safetensors(tmp_path, patched):
    source = nn.Linear(3, 2)
    torch.save({'state_dict': source.state_dict()}, tmp_path / 'w.pth')
    save_file(source.state_dict(), tmp_path / 'w.safetensors')
    for path in (tmp_path / 'w.pth', tmp_path / 'w.safetensors'):
        target = nn.Linear(3, 2)
        load_checkpoint(target, str(path))
        torch.testing.assert_close(target.weight, source.weight)
    torch.save({'extra': Custom()}, tmp_path / 'custom.pth')
    with pytest.raises(UnsafeCheckpointError):
        CheckpointLoader.load_checkpoint(str(tmp_path / 'custom.pth'))
    assert safe_load(tmp_path / 'w.safetensors')['bias'].shape == (2,)


class RunsShell:
    """Pickles as ``os.system('echo pwned')``: what a malicious checkpoint does."""

    def __reduce__(self):
        return os.system, ('echo pwned',)


@pytest.mark.parametrize('writer', ['zip', 'legacy', 'raw_pickle'])
def test_code_running_pickle_is_unsafe_not_corrupt(tmp_path, writer):
    path = tmp_path / 'evil.pth'
    if writer == 'raw_pickle':  # protocol 4, which torch's unpickler cannot even parse: found by a static scan
        path.write_bytes(pickle.dumps({'state_dict': {}, 'x': RunsShell()}, protocol=4))
    else:
        torch.save({'state_dict': {}, 'x': RunsShell()}, path, _use_new_zipfile_serialization=writer == 'zip')
    with pytest.raises(UnsafeCheckpointError) as error:
        safe_torch_load(path)
    message = str(error.value)
    assert message.startswith('unsafe checkpoint: refusing to unpickle `posix.system`')
    assert 'never allow-list it' in message
    assert 'corrupt' not in message and 'weights_only' not in message and 'likely succeed' not in message


def test_unsafe_checkpoint_through_mmengine_resume_names_the_global(tmp_path, patched):
    torch.save({'state_dict': {}, 'meta': {'hook': RunsShell()}}, tmp_path / 'iter_2.pth')
    runner = toy_runner(tmp_path / 'run', max_iters=4, load_from=str(tmp_path / 'iter_2.pth'), resume=True)
    with pytest.raises(UnsafeCheckpointError, match='unsafe checkpoint: refusing to unpickle `posix.system`') as error:
        runner.train()
    assert 'weights_only' not in str(error.value)
