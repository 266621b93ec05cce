"""Saving a continual run's state: a save killed at any point leaves a state that restores (the previous one or
the new one), never none."""
from pathlib import Path

import pytest

from petl_vision.continual.state import recover_state
from tests.conftest import load_tool
from tests.continual.test_harness import make_run


def _killed_rename_into(folder: Path, monkeypatch):
    rename = Path.rename

    def killed(self, target):
        if Path(target) == folder:
            raise KeyboardInterrupt('killed while the new state is renamed into place')
        return rename(self, target)
    monkeypatch.setattr(Path, 'rename', killed)


def test_a_save_killed_before_the_new_state_is_in_place_keeps_the_previous_one(tmp_path, monkeypatch):
    state = tmp_path / 'state'
    run = make_run(methods=('oracle',))
    run.run(stop_after=1, save_to=state)
    run.run_stage(1)
    with monkeypatch.context() as m:
        _killed_rename_into(state, m)
        with pytest.raises(KeyboardInterrupt):
            run.save(state)
    resumed = make_run(methods=('oracle',))
    resumed.restore(state)  # the state after stage 1, whole
    assert resumed.completed == 1 and resumed.l2r.adapters == ['task0']
    assert state.is_dir() and not state.with_name('state.old').exists()


def test_recover_state_finishes_an_interrupted_swap(tmp_path):
    state, old = tmp_path / 'state', tmp_path / 'state.old'
    old.mkdir()
    (old / 'progress.json').write_text('{}')
    assert recover_state(state) == state and (state / 'progress.json').exists() and not old.exists()
    old.mkdir()  # killed after the new state was in place, before the previous one was deleted
    assert recover_state(state) == state and (state / 'progress.json').exists() and not old.exists()


def test_resume_finds_a_state_whose_save_was_killed_mid_swap(tmp_path):
    tool = load_tool('continual.py')
    (tmp_path / 'config.json').write_text('{"seed": 0}')
    (tmp_path / 'state.old').mkdir()  # killed between moving the previous state aside and the new one in
    assert tool.prepare_work_dir(tmp_path, {'seed': 0}, resume=True, overwrite=False) is True
    assert (tmp_path / 'state').is_dir() and not (tmp_path / 'state.old').exists()
