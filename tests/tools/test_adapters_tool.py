"""tools/adapters.py: add/list/show through real processes, verify/remove in process, user errors as one paragraph."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import petl_vision as pv
from petl_vision.cli import run_main
from petl_vision.composition.library import AdapterLibrary
from petl_vision.tuners import adapter_parameters
from tests.conftest import load_tool, tiny_vit

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope='module')
def tool():
    return load_tool('adapters.py')


@pytest.fixture
def files(tmp_path):
    """Two tuner files of one tiny ViT: a LoRA and an AdaptFormer adapter (non-zero weights)."""
    model = tiny_vit()
    pv.add_adapter(model, 'lora', [{'type': 'LoRA', 'targets': 'blocks.*.attn.qkv', 'rank': 2}])
    pv.add_adapter(model, 'adapt', [{'type': 'AdaptFormer', 'targets': 'blocks.*.mlp', 'dim': 4}])
    with torch.no_grad():
        for p in adapter_parameters(model, 'lora') + adapter_parameters(model, 'adapt'):
            p.fill_(0.01)
    return {n: pv.save_tuners(model, tmp_path / f'{n}.safetensors', adapter=n) for n in ('lora', 'adapt')}


def cli(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != 'PETL_VISION_DEBUG'}
    return subprocess.run([sys.executable, 'tools/adapters.py', *args], cwd=ROOT, capture_output=True, text=True,
                          env={**env, 'OMP_NUM_THREADS': '1'}, timeout=120)


def test_add_list_and_show_through_the_command_line(files, tmp_path):
    lib = tmp_path / 'lib'
    added = cli('add', str(lib), str(files['lora']), '--name', 'cars', '--task', 'classification', '--dataset',
                'stanford_cars', '--metric', 'top1=0.812', '--metric', 'top5=0.95')
    assert added.returncode == 0, added.stderr
    entry = AdapterLibrary(lib).get('cars')
    assert added.stdout.strip() == f'added cars: LoRA blocks.*.attn.qkv rank=2; 1,024 trainable; sha256 {entry.sha256}'
    assert entry.metrics == {'top1': 0.812, 'top5': 0.95} and entry.dataset == 'stanford_cars'
    AdapterLibrary(lib).add(files['adapt'], 'birds', dataset='cub')
    listed = cli('list', str(lib))
    assert listed.returncode == 0, listed.stderr
    header, rule, birds, cars, count = listed.stdout.splitlines()
    assert header.split() == ['name', 'task', 'dataset', 'plan', 'trainable', 'metrics', 'backbone', 'created']
    assert birds.split()[:3] == ['birds', '-', 'cub'] and 'AdaptFormer blocks.*.mlp dim=4' in birds
    assert cars.split()[:3] == ['cars', 'classification', 'stanford_cars']
    assert 'top1=0.812 top5=0.95' in cars and 'VisionTransformer 113,925' in cars and '1,024' in cars
    assert count == f'2 adapters in {lib}'
    shown = cli('show', str(lib), 'cars')
    assert shown.returncode == 0, shown.stderr
    fields = {line.split(None, 1)[0]: line.split(None, 1)[1] for line in shown.stdout.splitlines()[2:-1]}
    assert fields['sha256'] == entry.sha256 and fields['status'] == 'ok' and fields['trainable'] == '1,024'
    assert fields['file'] == str(lib / entry.file)
    plan = json.loads(shown.stdout.splitlines()[-1].removeprefix('full plan: '))
    assert plan == [{'type': 'LoRA', 'targets': 'blocks.*.attn.qkv', 'rank': 2}]


def run_tool(tool, monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    """``tools/adapters.py ARGS`` in this process, through run_main: (exit code, stdout, stderr)."""
    monkeypatch.setattr(sys, 'argv', ['adapters.py', *args])
    with pytest.raises(SystemExit) as exit_info:
        run_main(tool.main)
    out, err = capsys.readouterr()
    return exit_info.value.code, out, err


def test_verify_names_the_changed_file_and_exits_1(tool, files, tmp_path, monkeypatch, capsys):
    lib = AdapterLibrary(tmp_path / 'lib')
    lib.add(files['lora'], 'cars')
    lib.add(files['adapt'], 'birds')
    code, out, _ = run_tool(tool, monkeypatch, capsys, 'verify', str(lib.directory))
    assert code == 0 and out.splitlines()[-1] == 'all 2 files match their sha256'
    path = lib.path_of('cars')
    path.write_bytes(path.read_bytes()[:-1] + b'!')
    code, out, err = run_tool(tool, monkeypatch, capsys, 'verify', str(lib.directory))
    assert code == 1
    assert [line.split()[:2] for line in out.splitlines()[2:]] == [['birds', 'ok'], ['cars', 'changed']]
    assert err.startswith('adapters.py: error: 1 of 2 adapter files do not match library.json: cars (changed)')
    assert len(err.strip().splitlines()) == 1


def test_remove_and_user_errors_are_one_paragraph(tool, files, tmp_path, monkeypatch, capsys):
    lib = AdapterLibrary(tmp_path / 'lib')
    lib.add(files['lora'], 'cars')
    code, out, _ = run_tool(tool, monkeypatch, capsys, 'remove', str(lib.directory), 'cars')
    assert code == 0 and out.startswith('removed cars (cars-') and lib.names() == []
    cases = [(('show', str(lib.directory), 'cars'), "no adapter named 'cars'; it has: nothing"),
             (('list', str(tmp_path / 'nowhere')), 'is not an adapter library (no library.json)'),
             (('add', str(lib.directory), str(files['lora']), '--name', '9lives'), "adapter name '9lives' must start"),
             (('add', str(lib.directory), str(tmp_path / 'gone.safetensors'), '--name', 'x'), 'no such tuner file')]
    for args, phrase in cases:
        code, _, err = run_tool(tool, monkeypatch, capsys, *args)
        assert code == 1 and phrase in err and len(err.strip().splitlines()) == 1, err
        assert err.startswith('adapters.py: error: ')
    lib.add(files['lora'], 'cars')
    code, _, err = run_tool(tool, monkeypatch, capsys, 'add', str(lib.directory), str(files['adapt']), '--name', 'cars')
    assert code == 1 and "already has an adapter named 'cars'" in err and lib.get('cars').plan.startswith('LoRA')
    code, _, err = run_tool(tool, monkeypatch, capsys, 'add', str(lib.directory), str(files['lora']), '--name', 'y',
                            '--metric', 'top1')
    assert code == 2 and "'top1' is not NAME=NUMBER" in err
