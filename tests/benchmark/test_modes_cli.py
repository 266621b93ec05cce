"""tools/benchmark.py --merged / --routed / --pha on a tiny model: the record, the tables and the plot it writes."""
import json
import sys

import pytest

from tests.conftest import load_tool

TINY = ['--model', 'vit_tiny_patch16_224', '--img-size', '32', '--batch-size', '4', '--num-classes', '3',
        '--rounds', '1', '--warmup', '0', '--threads', '1']
MODES = {'merged': (['--merged', '--merged-adapters', '2'], 'row', '| merged |'),
         'routed': (['--routed', '2'], 'rows', '| 2 |'),
         'pha': (['--pha', '--pha-tasks', '2', '--pha-block', '1'], 'rows', 'retriever on block 1')}


@pytest.mark.parametrize('mode', list(MODES))
def test_mode_writes_json_markdown_and_png(mode, tmp_path, monkeypatch, capsys):
    flags, key, cell = MODES[mode]
    out = tmp_path / f'{mode}.json'
    monkeypatch.setattr(sys, 'argv', ['benchmark.py', *TINY, *flags, '--json', str(out)])
    load_tool('benchmark.py').main()
    record = json.loads(out.read_text())
    assert record['config']['model'] == 'vit_tiny_patch16_224' and record['config']['rounds'] == 1
    assert key in record and record['machine']['torch_threads'] == 1
    assert cell in out.with_suffix('.md').read_text() and cell in capsys.readouterr().out
    assert out.with_suffix('.png').read_bytes()[:4] == b'\x89PNG'


def test_two_modes_in_one_command_are_refused(monkeypatch):
    monkeypatch.setattr(sys, 'argv', ['benchmark.py', *TINY, '--merged', '--routed', '2'])
    with pytest.raises(SystemExit, match='--merged and --routed are separate benchmarks'):
        load_tool('benchmark.py').main()
