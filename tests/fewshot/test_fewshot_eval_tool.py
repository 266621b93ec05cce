import json

import numpy as np
import pytest
import torch

from petl_vision.datasets.digits import SklearnDigits
from petl_vision.datasets.episodes import EpisodeSampler, FixedProtocol
from petl_vision.demo import build_demo_backbone
from petl_vision.fewshot import FewShotDomain, FewShotEvaluator, frozen_prototype_baseline
from tests.conftest import TOOLS, load_tool


def test_tool_runs_every_method_and_writes_json(tmp_path):
    tool = load_tool('fewshot_eval.py')
    out = tmp_path / 'fewshot.json'
    results = tool.main(['--backbone', 'vit_digits_demo', '--method', 'frozen', 'head', 'tsa', 'prolad', 'lora',
                         '--dataset', 'digits', '--episodes', '2', '--n-way', '3', '--k-shot', '2', '--n-query', '3',
                         '--max-iter', '2', '--no-progress', '--device', 'cpu', '--out', str(out)])
    saved = json.loads(out.read_text())
    assert saved['results'] == results and saved['config']['episodes'] == 2
    assert set(results) == {'frozen', 'head', 'tsa', 'prolad', 'lora'}
    for method, r in results.items():
        row = r['domains']['digits']
        assert row['episodes'] == 2 and len(row['accuracies']) == 2, method
        assert row['accuracy'] == pytest.approx(100 * np.mean(row['accuracies'])), method
        assert r['average'] == pytest.approx(row['accuracy']) and r['seconds_per_episode'] > 0

    # the frozen method equals the evaluator on the same episodes fed by hand (checks the tool's data path:
    # digits test split, 32 px, normalised with the demo backbone's mean = std = 0.5 in 0..1 units)
    dataset = SklearnDigits(split='test')
    labels = np.array([d['gt_label'] for d in dataset.data_list])
    images = torch.stack([torch.from_numpy(d['img']) for d in dataset.data_list]).float()
    x = (images / 255 - 0.5) / 0.5
    model = build_demo_backbone(num_classes=0).eval()
    domain = FewShotDomain('digits', EpisodeSampler(labels, FixedProtocol(3, 2, 3), seed=0),
                           lambda idx: x[torch.as_tensor(idx)])
    expected = FewShotEvaluator(frozen_prototype_baseline(model), model, num_episodes=2, progress=False
                                ).evaluate([domain]).domains['digits'].accuracies
    np.testing.assert_allclose(results['frozen']['domains']['digits']['accuracies'], expected)


def test_tool_reads_an_image_folder_domain(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    split = {}
    for c in range(3):
        for i in range(4):  # class c: a flat grey level, plus noise
            pixels = np.clip(60 * c + 40 + rng.normal(0, 5, (12, 12, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(tmp_path / f'{c}_{i}.png')
            split[f'{c}_{i}.png'] = c
    (tmp_path / 'test.json').write_text(json.dumps(split))  # the tool reads one split; train and val hold others
    for name in ('train', 'val'):
        (tmp_path / f'{name}.json').write_text(json.dumps({}))
    tool = load_tool('fewshot_eval.py')
    results = tool.main(['--backbone', 'vit_digits_demo', '--method', 'frozen', '--dataset', 'folder:grey',
                         '--data-root', str(tmp_path), '--episodes', '2', '--n-way', '3', '--k-shot', '1',
                         '--n-query', '2', '--no-progress', '--device', 'cpu'])
    assert results['frozen']['domains']['folder:grey']['accuracy'] == 100.0  # grey levels are easy to tell apart


def test_tool_names_unknown_choices():
    tool = load_tool('fewshot_eval.py')
    with pytest.raises(SystemExit, match="unknown method 'prolad2'"):
        tool.build_method('prolad2', build_demo_backbone(num_classes=0))
    with pytest.raises(SystemExit, match="dataset 'cub' reads files: pass its --data-root"):
        tool.dataset_config('cub', None, 'test', 32)


def test_tool_takes_a_config_writes_csv_and_plot_and_the_command_line_wins(tmp_path):
    config = tmp_path / 'fs.py'
    config.write_text("backbone = 'vit_digits_demo'\nmethod = ['frozen']\ndataset = ['digits']\nepisodes = 5\n"
                      "n_way, k_shot, n_query = 3, 1, 2\n")
    tool = load_tool('fewshot_eval.py')
    out = tmp_path / 'res.json'
    results = tool.main([str(config), '--episodes', '3', '--no-progress', '--device', 'cpu', '--out', str(out)])
    row = results['frozen']['domains']['digits']
    assert len(row['accuracies']) == 3  # --episodes 3 overrides the config's 5
    lines = out.with_suffix('.csv').read_text().splitlines()
    assert lines[0] == 'method,domain,accuracy,ci95,episodes,seconds_per_episode'
    assert lines[1].startswith(f"frozen,digits,{row['accuracy']:.4f},{row['ci95']:.4f},3,")
    assert out.with_suffix('.png').read_bytes()[:4] == b'\x89PNG'
    config.write_text("backbone = 'vit_digits_demo'\ndatasets = ['digits']\n")
    with pytest.raises(SystemExit, match=r"unknown keys \['datasets'\]"):
        tool.parse_args([str(config)])


def test_shipped_configs_name_only_known_options():
    tool = load_tool('fewshot_eval.py')
    for config in sorted((TOOLS.parent / 'configs' / 'prolad').glob('*.py')):
        args = tool.parse_args([str(config)])
        assert args.backbone and args.dataset and set(args.method) <= {'frozen', 'head', 'tsa', 'prolad', 'lora'}
