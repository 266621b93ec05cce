"""tools/analysis/adapter_library.py on a tiny setting (3 digits domains, 1 epoch, 3 images per class): every output
is written and its numbers agree with evaluating the saved adapters and mixtures directly."""
import csv
import importlib.util
import json
from pathlib import Path

import pytest
import torch

import petl_vision as pv

from petl_vision.composition import (combine_adapters, domain_embedding, greedy_mix, select_adapters, sign_difference,
                                     task_vector_similarity)
from petl_vision.composition.library import AdapterLibrary, load_library

ROOT = Path(__file__).resolve().parents[2]
DOMAINS = ['upright', 'rotated_90', 'inverted']


def _tool():
    spec = importlib.util.spec_from_file_location('adapter_library_tool', ROOT / 'tools/analysis/adapter_library.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def study(tmp_path_factory):
    tool = _tool()
    out = tmp_path_factory.mktemp('study')
    args = tool.parse_args(['--out', str(out), '--domains', *DOMAINS, '--epochs', '1', '--train-shots', '3',
                            '--probe-shots', '1', '--k', '1', '--lr', '0.05', '--densities', '0.1', '1.0'])
    torch.set_num_threads(1)
    return tool, args, tool.run(args)


def _fresh(tool, out: Path):
    """A new frozen backbone with the library's adapters and the saved head."""
    backbone = load_library(tool.build_backbone(), out / 'library')
    head = torch.nn.Linear(96, 10)
    head.load_state_dict(torch.load(out / 'head.pt', weights_only=True))
    return backbone, head.eval()


def _csv(path: Path) -> list[dict]:
    with open(path) as f:
        return list(csv.DictReader(f))


def test_every_output_is_written(study):
    _, args, _ = study
    for name in ('results.csv', 'results.md', 'pairs.csv', 'summary.json', 'sign_difference.png',
                 'sign_vs_accuracy.png', 'pruning.png', 'head.pt'):
        assert (args.out / name).stat().st_size > 0, name
    assert sorted(AdapterLibrary(args.out / 'library').names()) == sorted(DOMAINS)
    rows = _csv(args.out / 'results.csv')
    per_domain = 2 + (len(DOMAINS) - 1) + 1 + 8 + 2  # frozen, own, singles, probe, 8 mixes, 2 densities
    assert len(rows) == len(DOMAINS) * per_domain
    assert len(_csv(args.out / 'pairs.csv')) == 3
    table = (args.out / 'results.md').read_text()
    assert all(f'| {d} |' in table for d in DOMAINS) and 'Spearman' in table


def test_own_single_and_frozen_rows_equal_direct_evaluation(study):
    tool, args, result = study
    backbone, head = _fresh(tool, args.out)
    rows = {(r['held_out'], r['method']): r for r in result['rows']}
    for held in DOMAINS:
        test = tool.domain_split(held, 'test')
        assert rows[held, 'own']['accuracy'] == tool.accuracy(backbone, head, *test, held)
        assert rows[held, 'frozen']['accuracy'] == tool.accuracy(backbone, head, *test, None)
        for other in DOMAINS:
            if other != held:
                assert rows[held, f'single:{other}']['accuracy'] == tool.accuracy(backbone, head, *test, other)
    own = [rows[d, 'own']['accuracy'] for d in DOMAINS]
    library = AdapterLibrary(args.out / 'library')
    assert own == [library.get(d).metrics['test_acc'] for d in DOMAINS]


def test_mixtures_equal_direct_combination(study):
    tool, args, result = study
    backbone, head = _fresh(tool, args.out)
    rows = {(r['held_out'], r['method']): r for r in result['rows']}
    held, others = DOMAINS[0], DOMAINS[1:]
    test = tool.domain_split(held, 'test')
    combine_adapters(backbone, others, None, 'soup')
    combine_adapters(backbone, others, None, 'ties', method='ties', density=args.ties_density)
    assert rows[held, 'soup_all']['accuracy'] == tool.accuracy(backbone, head, *test, 'soup')
    assert rows[held, 'ties']['accuracy'] == tool.accuracy(backbone, head, *test, 'ties')
    assert rows[held, 'soup_all']['sign_difference'] == pytest.approx(sign_difference(backbone, others).kway)
    assert rows[held, 'soup_topk']['adapters'] in others  # k = 1: one of the others, never the held-out one


def test_selection_rows_equal_direct_selection_by_domain_embedding(study):
    tool, args, result = study
    backbone, head = _fresh(tool, args.out)
    library = AdapterLibrary(args.out / 'library')
    for d in DOMAINS:  # the index holds each domain's mean frozen CLS feature of its training images
        images = tool.domain_split(d, 'train', args.train_shots, args.seed)[0]
        stored = torch.tensor(library.get(d).embedding['vector'])
        assert torch.allclose(stored, domain_embedding(backbone, images, 'cls'), atol=1e-5)
    rows = {(r['held_out'], r['method']): r for r in result['rows']}
    held, others = DOMAINS[0], DOMAINS[1:]
    images, labels = tool.domain_split(held, 'train', args.probe_shots, args.seed)
    ranked = [n for n, _ in select_adapters(library, images, 2, model=backbone, names=others)]
    assert rows[held, 'emb_topk']['adapters'] == ranked[0]  # k = 1
    clusters = min(args.clusters, len(others))  # 2: each other domain its own cluster
    cluster = [n for n, _ in select_adapters(library, images, clusters, by='cluster', model=backbone, names=others,
                                             seed=args.seed)]
    assert rows[held, 'emb_cluster']['adapters'] == '+'.join(cluster)
    sign = greedy_mix(backbone, ranked, 'g', threshold=args.greedy_threshold)
    assert rows[held, 'greedy_sign']['adapters'] == '+'.join(sign.members)
    test = tool.domain_split(held, 'test')
    assert rows[held, 'greedy_sign']['accuracy'] == tool.accuracy(backbone, head, *test, 'g')
    val = greedy_mix(backbone, ranked, 'v', evaluate=lambda m, n: tool.accuracy(m, head, images, labels, n))
    assert rows[held, 'greedy_val']['adapters'] == '+'.join(val.members)


def test_seeds_repeat_the_study_and_summarise_mean_and_std(tmp_path):
    tool = _tool()
    args = tool.parse_args(['--out', str(tmp_path), '--domains', 'upright', 'inverted', '--epochs', '1',
                            '--train-shots', '1', '--probe-shots', '1', '--k', '1', '--clusters', '1',
                            '--densities', '1.0', '--seeds', '0', '1'])
    results = tool.run_seeds(args)
    for seed in (0, 1):
        assert (tmp_path / f'seed_{seed}' / 'results.csv').stat().st_size > 0
    summary = json.loads((tmp_path / 'summary.json').read_text())
    per_seed = [tool.wide(results[s]['rows'])['upright']['own'] for s in (0, 1)]
    mean, std = summary['table']['upright']['own']
    assert mean == pytest.approx(sum(per_seed) / 2) and std == pytest.approx(abs(per_seed[0] - per_seed[1]) / 2 ** 0.5)
    assert '+-' in (tmp_path / 'results.md').read_text()
    for name in ('sign_difference.png', 'sign_vs_accuracy.png', 'pruning.png'):
        assert (tmp_path / name).stat().st_size > 0


def test_pairs_and_correlation_are_consistent(study):
    tool, args, result = study
    backbone, head = _fresh(tool, args.out)
    signs = sign_difference(backbone, DOMAINS)
    pairs = {(p['a'], p['b']): p for p in result['pairs']}
    a, b = DOMAINS[0], DOMAINS[1]
    assert pairs[a, b]['sign_difference'] == pytest.approx(float(signs.pairwise[0, 1]))
    combine_adapters(backbone, [a, b], [0.5, 0.5], 'pair')
    accuracy = tool.accuracy(backbone, head, *tool.domain_split(DOMAINS[2], 'test'), 'pair')
    assert pairs[a, b]['mix_accuracy'] == pytest.approx(accuracy)  # the one domain that is neither's
    singles = result['singles'][DOMAINS[2]]
    assert pairs[a, b]['single_mean'] == pytest.approx((singles[a] + singles[b]) / 2)
    summary = json.loads((args.out / 'summary.json').read_text())
    assert summary['correlation']['pairs'] == 3
    pruned = sign_difference(backbone, DOMAINS, density=args.sign_density)
    assert pairs[a, b]['sign_difference_pruned'] == pytest.approx(float(pruned.pairwise[0, 1]))
    assert pairs[a, b]['cosine'] == pytest.approx(float(task_vector_similarity(backbone, DOMAINS)[0, 1]))
    assert pairs[a, b]['gain'] == pytest.approx(pairs[a, b]['mix_accuracy'] - pairs[a, b]['single_mean'])
    assert summary['table'][DOMAINS[0]]['single_best'] == max(
        r['accuracy'] for r in result['rows'] if r['held_out'] == DOMAINS[0] and r['method'].startswith('single:'))


def test_bad_domains_are_refused():
    with pytest.raises(SystemExit):
        _tool().parse_args(['--out', 'x', '--domains', 'upright'])
    with pytest.raises(SystemExit):
        _tool().parse_args(['--out', 'x', '--domains', 'upright', 'sideways'])


@pytest.mark.parametrize('init', ['shared', 'independent'])
def test_shared_init_starts_every_adapter_from_the_same_lora(init):
    tool = _tool()
    args = tool.parse_args(['--out', 'unused', '--epochs', '0', '--init', init])
    backbone, head = tool.build_backbone(), torch.nn.Linear(96, 10)
    data = (torch.zeros(1, 3, 32, 32), torch.zeros(1, dtype=torch.long))
    for name in ('a', 'b'):
        tool.train_adapter(backbone, head, name, data, args)
    a, b = (pv.tuners.adapter_state(backbone, n) for n in ('a', 'b'))
    assert sorted(a) == sorted(b) and len(a) == 6 * 2  # A and B of every block's qkv
    same = [torch.equal(a[k], b[k]) for k in a]
    assert all(same) if init == 'shared' else sum(same) == 6  # independent: only the zero-initialised B agree
