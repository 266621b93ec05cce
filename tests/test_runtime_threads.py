"""The tools' torch thread count: the precedence (--threads, PETL_VISION_THREADS, OMP_NUM_THREADS, default), the
default from the CPUs the process may use (affinity, cgroup quota), clear errors, and the tools applying it."""
import sys
from pathlib import Path

import pytest
import torch

from petl_vision import runtime_threads as rt
from tests.conftest import load_tool


@pytest.fixture
def restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize('cpus, expected', [(1, 1), (2, 1), (3, 1), (4, 2), (12, 6), (16, 8), (64, 8)])
def test_default_is_half_the_cpus_between_1_and_8(cpus, expected):
    assert rt.choose_threads(environ={}, cpus=cpus) == (expected, 'default')


def test_precedence_flag_then_petl_variable_then_omp():
    env = {'PETL_VISION_THREADS': '3', 'OMP_NUM_THREADS': '5'}
    assert rt.choose_threads(2, environ=env, cpus=64) == (2, '--threads')
    assert rt.choose_threads(environ=env, cpus=64) == (3, 'PETL_VISION_THREADS')
    assert rt.choose_threads(environ={'OMP_NUM_THREADS': '5'}, cpus=64) == (5, 'OMP_NUM_THREADS')
    assert rt.choose_threads(environ={'OMP_NUM_THREADS': ' '}, cpus=64) == (8, 'default')  # empty: unset


@pytest.mark.parametrize('value', ['0', '-2', 'two', '1.5'])
def test_a_bad_count_names_the_variable_and_the_fix(value):
    with pytest.raises(ValueError, match=rf"PETL_VISION_THREADS='{value}' is not a thread count; give a whole number"):
        rt.choose_threads(environ={'PETL_VISION_THREADS': value}, cpus=4)
    with pytest.raises(ValueError, match='--threads=0 is not a thread count'):
        rt.choose_threads(0, environ={}, cpus=4)


def test_cgroup_quota_v2_and_v1(tmp_path):
    v2 = tmp_path / 'v2'
    v2.mkdir()
    (v2 / 'cpu.max').write_text('150000 100000\n')
    assert rt.cgroup_cpu_limit(v2) == 1.5
    (v2 / 'cpu.max').write_text('max 100000\n')
    assert rt.cgroup_cpu_limit(v2) is None
    v1 = tmp_path / 'v1' / 'cpu'
    v1.mkdir(parents=True)
    (v1 / 'cpu.cfs_quota_us').write_text('300000\n')
    (v1 / 'cpu.cfs_period_us').write_text('100000\n')
    assert rt.cgroup_cpu_limit(tmp_path / 'v1') == 3.0
    (v1 / 'cpu.cfs_quota_us').write_text('-1\n')
    assert rt.cgroup_cpu_limit(tmp_path / 'v1') is None
    assert rt.cgroup_cpu_limit(tmp_path / 'missing') is None


def test_available_cpus_is_the_affinity_lowered_to_the_quota(monkeypatch, tmp_path):
    monkeypatch.setattr(rt.os, 'sched_getaffinity', lambda pid: set(range(32)))
    (tmp_path / 'cpu.max').write_text('250000 100000\n')  # a container limited to 2.5 CPUs of a 32-CPU host
    assert rt.available_cpus(tmp_path) == 3
    assert rt.available_cpus(tmp_path / 'missing') == 32
    monkeypatch.setattr(rt.os, 'sched_getaffinity', lambda pid: {0, 1})
    assert rt.available_cpus(tmp_path) == 2


def test_set_torch_threads_applies_the_choice(monkeypatch, restore_threads):
    monkeypatch.setenv('PETL_VISION_THREADS', '1')
    assert rt.set_torch_threads() == 1 and torch.get_num_threads() == 1
    assert rt.set_torch_threads(2) == 2 and torch.get_num_threads() == 2


class _Stop(Exception):
    """Raised by the stub runner builders once the tool has chosen its threads."""


def _record_threads(*args, **kwargs):
    raise _Stop(torch.get_num_threads())


@pytest.mark.parametrize('tool', ['train.py', 'test.py'])
def test_train_and_test_set_the_threads_before_building_the_runner(tool, monkeypatch, restore_threads):
    module = load_tool(tool)
    monkeypatch.setattr(module, 'build_runner', _record_threads)
    monkeypatch.setenv('PETL_VISION_THREADS', '2')
    torch.set_num_threads(1)
    config = Path(__file__).resolve().parents[1] / 'configs' / 'quickstart' / 'linear.py'
    monkeypatch.setattr(sys, 'argv', [tool, str(config), *(['x.safetensors'] if tool == 'test.py' else []),
                                      '--work-dir', '/nonexistent/petl_threads_test'])
    with pytest.raises(_Stop) as stop:
        module.main()
    assert stop.value.args == (2,)


def test_suite_and_fewshot_take_a_threads_flag(monkeypatch, restore_threads):
    suite = load_tool('run_benchmark_suite.py')
    monkeypatch.setattr(sys, 'argv', ['run_benchmark_suite.py', 'configs/quickstart', '--threads', '2'])
    suite.parse_args()
    assert torch.get_num_threads() == 2
    monkeypatch.setattr(sys, 'argv', ['run_benchmark_suite.py', 'configs/quickstart', '--threads', '0'])
    with pytest.raises(SystemExit):
        suite.parse_args()
    fewshot = load_tool('fewshot_eval.py')
    monkeypatch.setattr(fewshot, 'evaluate', _record_threads)
    with pytest.raises(_Stop) as stop:
        fewshot.main(['--backbone', 'vit_digits_demo', '--dataset', 'digits', '--threads', '1'])
    assert stop.value.args == (1,)
