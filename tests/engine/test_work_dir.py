"""``tools/train.py`` never replaces an earlier run silently: a work dir holding one needs ``--resume``,
``--overwrite`` or another ``--work-dir``; ``--resume`` with nothing to resume says so."""
import sys
import uuid
from pathlib import Path

import pytest

from petl_vision.engine import WorkDirInUse, resolve_start, run_files
from tests.conftest import load_tool
from tests.engine.tiny_run import tiny_config

train_tool = load_tool('train.py')


def train(monkeypatch, config: Path, work_dir: Path, *args: str) -> None:
    """``tools/train.py CONFIG --work-dir WORK_DIR ARGS`` in this process (a unique experiment name per run)."""
    monkeypatch.setattr(sys, 'argv', ['train.py', str(config), '--work-dir', str(work_dir), *args,
                                      '--cfg-options', f'experiment_name=run_{uuid.uuid4().hex[:8]}'])
    train_tool.main()


@pytest.fixture
def config(tmp_path) -> Path:
    path = tmp_path / 'tiny.py'
    tiny_config(tmp_path / 'unused', max_epochs=1, checkpoint_every=4,
                custom_hooks=[dict(type='TunerCheckpointHook', save_best='accuracy/top1')]).dump(path)
    return path


def snapshot(work_dir: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in run_files(work_dir)}


def test_a_second_run_is_refused_and_loses_nothing_then_overwrite_replaces(monkeypatch, config, tmp_path, capsys):
    work_dir = tmp_path / 'work'
    train(monkeypatch, config, work_dir)
    before = snapshot(work_dir)
    assert {'last_checkpoint', 'iter_8.pth', 'tuners_best.safetensors', 'tuners_best.json'} <= before.keys()

    with pytest.raises(SystemExit) as refused:
        train(monkeypatch, config, work_dir)
    message = str(refused.value)
    for expected in (f'{work_dir} holds an earlier run', 'last_checkpoint -> iter_8.pth',
                     'tuners_best.safetensors with accuracy/top1=', '--resume', 'fresh --work-dir', '--overwrite'):
        assert expected in message
    assert snapshot(work_dir) == before  # byte for byte

    train(monkeypatch, config, work_dir, '--overwrite', '--cfg-options', 'optim_wrapper.optimizer.lr=0.03')
    assert f'--overwrite: deleting the {len(before)} files of the earlier run' in capsys.readouterr().err
    after = snapshot(work_dir)
    assert after.keys() == before.keys() and after['tuners_latest.safetensors'] != before['tuners_latest.safetensors']


def test_resume_with_nothing_to_resume_says_so_and_starts_a_new_run(monkeypatch, config, tmp_path, capsys):
    work_dir = tmp_path / 'fresh'
    train(monkeypatch, config, work_dir, '--resume')
    err = capsys.readouterr().err
    assert f'--resume: no checkpoint in {work_dir} (no last_checkpoint); starting a new run' in err
    assert 'latest checkpoint None' not in err
    assert (work_dir / 'iter_8.pth').is_file()

    train(monkeypatch, config, work_dir, '--resume')  # now there is one: the finished run is continued, not redone
    assert f'resuming from {work_dir / "iter_8.pth"}, the latest checkpoint' in capsys.readouterr().err


def test_resume_and_overwrite_exclude_each_other(monkeypatch, config, tmp_path):
    with pytest.raises(SystemExit):
        train(monkeypatch, config, tmp_path / 'w', '--resume', '--overwrite')


def touch(work_dir: Path, *names: str) -> None:
    work_dir.mkdir(exist_ok=True)
    for name in names:
        (work_dir / name).write_text('x')


def test_what_holds_a_run(tmp_path):
    touch(tmp_path, 'tiny.py', 'notes.txt')
    (tmp_path / '20260101_120000').mkdir()  # logs of a run that stopped before its first checkpoint
    assert run_files(tmp_path) == []
    assert resolve_start(tmp_path, False, None) == (False, None, [], None)
    for name in ('last_checkpoint', 'epoch_3.pth', 'tuners_latest.safetensors', 'tuners_best.json'):
        work_dir = tmp_path / name.replace('.', '_')
        touch(work_dir, name)
        with pytest.raises(WorkDirInUse, match='holds an earlier run'):
            resolve_start(work_dir, False, None)
        with pytest.raises(WorkDirInUse, match='holds an earlier run'):
            resolve_start(work_dir, False, 'pretrained.pth')  # load_from starts a new run as well
    sharded = tmp_path / 'fsdp'
    (sharded / 'iter_4.pth').mkdir(parents=True)  # FSDP: a folder of shards
    assert run_files(sharded) == [sharded / 'iter_4.pth']


def test_resume_finds_the_latest_checkpoint_or_refuses_to_replace_tuner_files(tmp_path):
    touch(tmp_path, 'epoch_3.pth', 'tuners_best.safetensors')
    (tmp_path / 'last_checkpoint').write_text('/moved/elsewhere/epoch_3.pth')  # the run's path before a move
    assert resolve_start(tmp_path, True, None)[:3] == (True, str(tmp_path / 'epoch_3.pth'), [])
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'epoch_9.pth'))
    with pytest.raises(FileNotFoundError, match='names the checkpoint .*epoch_9.pth, which does not exist'):
        resolve_start(tmp_path, True, None)
    (tmp_path / 'last_checkpoint').unlink()
    (tmp_path / 'epoch_3.pth').unlink()
    with pytest.raises(WorkDirInUse, match='no checkpoint to --resume from'):
        resolve_start(tmp_path, True, None)  # a new run would replace tuners_best


def test_resume_path_must_exist_and_overwrite_lists_the_files(tmp_path):
    with pytest.raises(FileNotFoundError, match='--resume .*missing.pth: no such checkpoint'):
        resolve_start(tmp_path, True, str(tmp_path / 'missing.pth'))
    touch(tmp_path, 'iter_4.pth', 'last_checkpoint')
    resume, load_from, stale, message = resolve_start(tmp_path, False, None, overwrite=True)
    assert (resume, load_from, stale) == (False, None, [tmp_path / 'iter_4.pth', tmp_path / 'last_checkpoint'])
    assert message.startswith('--overwrite: deleting the 2 files')
