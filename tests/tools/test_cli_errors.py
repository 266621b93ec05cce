"""Tools end user errors with one paragraph and exit code 1, keep the traceback for bugs, and show it with --debug
or PETL_VISION_DEBUG=1 (petl_vision/cli.py)."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from petl_vision.cli import is_user_error, message_of, run_main

ROOT = Path(__file__).resolve().parents[2]


def run_tool(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k != 'PETL_VISION_DEBUG'}
    environ.update({'OMP_NUM_THREADS': '1', **(env or {})})
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=environ, capture_output=True, text=True,
                          timeout=120)


def assert_one_paragraph(result: subprocess.CompletedProcess, tool: str, *phrases: str) -> None:
    assert result.returncode == 1, result.stderr
    assert 'Traceback' not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f'{tool}: error: '), result.stderr
    assert all(p in lines[0] for p in phrases), lines[0]
    assert '--debug' in lines[0]


def test_unknown_zoo_name_is_one_paragraph_and_debug_shows_the_traceback(tmp_path):
    env = {'PETL_VISION_CACHE': str(tmp_path), 'HF_HOME': str(tmp_path / 'hf'), 'PETL_VISION_OFFLINE': '1'}
    result = run_tool('tools/zoo.py', 'download', 'vit_base_patch16_224_in21k', env=env)
    assert_one_paragraph(result, 'zoo.py', "no zoo entry named 'vit_base_patch16_224_in21k'",
                         'closest: vit_base_patch16_224.in21k')
    debug = run_tool('tools/zoo.py', 'download', 'vit_base_patch16_224_in21k', '--debug', env=env)
    assert debug.returncode == 1 and 'Traceback (most recent call last)' in debug.stderr
    assert 'KeyError' in debug.stderr
    by_env = run_tool('tools/zoo.py', 'path', 'nope', env={**env, 'PETL_VISION_DEBUG': '1'})
    assert by_env.returncode == 1 and 'Traceback (most recent call last)' in by_env.stderr


def test_missing_config_of_tools_test(tmp_path):
    missing = tmp_path / 'no_such_config.py'
    result = run_tool('tools/test.py', str(missing), str(tmp_path / 'ckpt.pth'))
    assert_one_paragraph(result, 'test.py', str(missing))


def test_publishing_a_code_running_checkpoint_is_an_unsafe_checkpoint(tmp_path):
    evil = tmp_path / 'iter_1.pth'
    torch.save({'state_dict': {}, 'x': RunsShell()}, evil)
    result = run_tool('tools/publish.py', str(evil), 'evil', '--out-dir', str(tmp_path / 'out'))
    assert_one_paragraph(result, 'publish.py', 'unsafe checkpoint: refusing to unpickle `posix.system`')
    assert 'corrupt' not in result.stderr and 'weights_only' not in result.stderr
    assert not (tmp_path / 'pwned').exists()


class RunsShell:
    def __reduce__(self):
        return os.system, ('touch pwned',)


def tool_main_raising(error: Exception):
    def main():
        raise error
    return main


def test_library_sentences_are_user_errors_bare_errors_are_bugs():
    def torch_index_error():
        return torch.zeros(2)[5]

    with pytest.raises(IndexError) as bug:
        torch_index_error()
    assert not is_user_error(bug.value)  # raised inside torch: a bug, the traceback stays
    with pytest.raises(KeyError) as bare:
        {}['w']
    assert not is_user_error(bare.value, __file__)  # a bare key is not a message for users
    with pytest.raises(KeyError) as known:
        from petl_vision.zoo import get_entry
        get_entry('nope')
    assert is_user_error(known.value) and message_of(known.value).startswith("no zoo entry named 'nope'")
    missing = FileNotFoundError(2, 'No such file or directory', '/data/cifar')
    assert is_user_error(missing) and message_of(missing) == 'No such file or directory: /data/cifar'


def test_run_main_exit_codes(monkeypatch, capsys):
    monkeypatch.setattr(sys, 'argv', ['tool.py', '--debug'])
    with pytest.raises(FileNotFoundError):  # --debug: re-raised, so Python prints the traceback
        run_main(tool_main_raising(FileNotFoundError(2, 'No such file or directory', 'x.py')))
    monkeypatch.setattr(sys, 'argv', ['tool.py'])
    with pytest.raises(SystemExit) as done:
        run_main(lambda: 3)
    assert done.value.code == 3
    with pytest.raises(SystemExit) as user:
        run_main(tool_main_raising(ValueError('rank must be a positive int,\ngot 2.5')))
    assert user.value.code == 1
    assert capsys.readouterr().err.startswith('tool.py: error: rank must be a positive int, got 2.5 (if this')
