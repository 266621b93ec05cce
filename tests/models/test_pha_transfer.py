"""PHA's few-shot transfer (``PHAClassifier.add_task`` / ``transfer_parameters``), its retrieval accuracy, the
block-retriever default plan and ``TaskContextClassifier`` (one-task-per-call baselines on mixed batches)."""
import pytest
import torch
from torch.nn import functional as F

from petl_vision.models.pha_classifier import (PHAClassifier, PHARetrievalAccuracy, TaskContextClassifier,
                                               build_pha_classifier, retrieval_accuracy)
from petl_vision.setup_env import register_all_modules
from petl_vision.tuners import tuned_ops, tuner_context
from petl_vision.tuners.pha import PHA
from tests.conftest import perturb

register_all_modules()
TASKS = {'digit': 10, 'parity': 2, 'at_least_5': 2}


def model(**kw) -> PHAClassifier:
    torch.manual_seed(0)
    m = PHAClassifier(backbone=dict(model='vit_digits_demo', pretrained=True), tasks=TASKS,
                      plan=[dict(type='PHA', rank=8)], **kw).eval()
    perturb(m, seed=4, scale=0.05)
    return m


def images(n: int = 6, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, 3, 32, 32, generator=torch.Generator().manual_seed(seed))


def test_a_new_task_copies_the_prototype_nearest_to_its_mean_embedding():
    m, x = model(), images()
    with torch.no_grad():
        mean = F.normalize(m.instance_embeddings(x), dim=-1).mean(0)  # (64,)
        table = m.source.prototypes.weight
        table[2] = 3.0 * mean  # at_least_5: the direction of the new task's instances
        table[0], table[1] = -mean + 0.1 * table[0], table[1] - (table[1] @ mean) * mean / mean.square().sum()
    learned = table.detach().clone()
    assert m.add_task('loops', 3, x) == 'at_least_5'
    assert m.task_list == [*TASKS, 'loops'] and m.tasks['loops'] == 3 and m.heads['loops'].out_features == 3
    torch.testing.assert_close(m.source.prototypes.weight[:3], learned)
    torch.testing.assert_close(m.source.prototypes.weight[3], learned[2])
    assert all(t.config.tasks == m.task_list for op in tuned_ops(m.backbone) for _, _, t in op.all_tuners()
               if isinstance(t, PHA))
    with torch.no_grad(), tuner_context(task='loops'):
        new = m.backbone(x)
    with torch.no_grad(), tuner_context(task='at_least_5'):
        torch.testing.assert_close(new, m.backbone(x))  # the copied prototype generates the same adapters


def test_mean_and_random_inits_and_bad_calls():
    m, x = model(), images()
    learned = m.source.prototypes.weight.detach().clone()
    assert m.add_task('loops', 3, x, init='mean') is None
    torch.testing.assert_close(m.source.prototypes.weight[3], learned.mean(0))
    torch.manual_seed(1)
    m.add_task('odd_loops', 2, x, init='random')
    torch.manual_seed(1)
    torch.testing.assert_close(m.source.prototypes.weight[4], torch.randn(64))
    with pytest.raises(ValueError, match="task 'loops' already exists"):
        m.add_task('loops', 3, x)
    with pytest.raises(ValueError, match='init must be one of'):
        m.add_task('new', 3, x, init='closest')


def test_only_the_new_prototype_and_head_train():
    m, x = model(), images()
    m.add_task('loops', 3, x)
    params = m.transfer_parameters('loops')
    frozen = {n: p.detach().clone() for n, p in m.named_parameters()}
    optimizer = torch.optim.Adam(params, lr=1e-2)
    m.train()
    for _ in range(3):
        optimizer.zero_grad()
        losses = m(x, torch.tensor([0, 1, 2, 0, 1, 2]), mode='loss', task='loops')
        sum(v for k, v in losses.items() if 'loss' in k).backward()
        with_grad = {n for n, p in m.named_parameters() if p.grad is not None}
        assert with_grad == {'backbone.petl_sources.default.pha.prototypes.weight', 'heads.loops.weight',
                             'heads.loops.bias'}
        grad = m.source.prototypes.weight.grad
        assert grad[:3].abs().sum() == 0 and grad[3].abs().sum() > 0
        optimizer.step()
    moved = {n for n, p in m.named_parameters() if not torch.equal(p, frozen[n])}
    assert moved == {'heads.loops.weight', 'heads.loops.bias', 'backbone.petl_sources.default.pha.prototypes.weight'}
    now = m.source.prototypes.weight
    torch.testing.assert_close(now[:3], frozen['backbone.petl_sources.default.pha.prototypes.weight'][:3],
                               rtol=0, atol=0)  # the learned prototypes stay exactly as they were


def test_retrieval_accuracy_per_task_and_overall_by_hand():
    tasks = ['a', 'a', 'a', 'b', 'b', 'c']
    got = retrieval_accuracy(tasks, ['a', 'b', 'a', 'b', 'b', 'a'])
    assert got == pytest.approx({'retrieval/a': 200 / 3, 'retrieval/b': 100.0, 'retrieval/c': 0.0,
                                 'retrieval/all': 400 / 6})


@pytest.mark.parametrize('source', ['given', 'retrieved'])
def test_the_retrieval_metric_reads_the_models_predictions(source):
    m = model(task_source=source)
    x, tasks = images(4), ['digit', 'parity', 'digit', 'at_least_5']
    with torch.no_grad():  # prototypes = embeddings of samples 0, 3, 1: sample 1 retrieves at_least_5, 3 parity
        e = m.instance_embeddings(x)
        m.source.prototypes.weight.copy_(e[[0, 3, 1]])
        preds = m(x, torch.tensor([3, 1, 4, 0]), mode='predict', task=tasks)
    retrieved = [p['retrieved_task'] for p in preds]
    assert [retrieved[i] for i in (0, 1, 3)] == ['digit', 'at_least_5', 'parity']
    metric = PHARetrievalAccuracy()
    metric.process(None, preds)
    got = metric.compute_metrics(metric.results)
    assert got == retrieval_accuracy(tasks, retrieved)
    assert (got['retrieval/parity'], got['retrieval/at_least_5']) == (0.0, 0.0)
    assert got['retrieval/digit'] == (100.0 if retrieved[2] == 'digit' else 50.0)
    with pytest.raises(KeyError, match='only a PHAClassifier sets'):
        metric.process(None, [{'task': 'digit'}])


def test_a_block_retriever_with_retrieval_puts_pha_only_after_its_block():
    m = build_pha_classifier('vit_digits_demo', tasks=2, retriever_features=2, task_source='retrieved',
                             pretrained=True)
    tuned = sorted(t.op_name for op in tuned_ops(m.backbone) for _, _, t in op.all_tuners())
    assert tuned == ['blocks.3.mlp', 'blocks.4.mlp', 'blocks.5.mlp']
    assert m.task_list == ['task0', 'task1'] and m.source.layer_embed.num_embeddings == 3
    assert len(build_pha_classifier('vit_digits_demo', tasks=2, retriever_features=2).source.layer_embed.weight) == 6


@pytest.mark.parametrize('tuner', ['HyperAdapter', 'PolyhistorLite'])
def test_task_context_classifier_runs_a_mixed_batch_as_each_task_alone(tuner):
    torch.manual_seed(0)
    entry = dict(type=tuner, targets='blocks.*.mlp', reduction=12)
    m = TaskContextClassifier(backbone=dict(model='vit_digits_demo', pretrained=True), tasks=TASKS, plan=[entry])
    perturb(m.eval(), seed=2, scale=0.05)
    x, tasks = images(5), ['parity', 'digit', 'parity', 'at_least_5', 'digit']
    mixed = m(x, mode='tensor', task=tasks)
    for t, rows in {'digit': [1, 4], 'parity': [0, 2], 'at_least_5': [3]}.items():
        with tuner_context(task=t):
            alone = m.heads[t](m.backbone(x[rows]))
        torch.testing.assert_close(mixed[t], alone, rtol=1e-5, atol=1e-5)
    with tuner_context(task='digit'):
        assert not torch.allclose(m.backbone(x[:1]), m.features(x[:1], ['parity']), atol=1e-5)


def test_a_prepass_stopping_at_block_k_reads_its_patch_tokens_and_runs_no_later_block():
    m = model(prepass_block=2)
    x = images(3)
    seen, calls = [], []
    blocks = m.backbone.blocks
    h1 = blocks[2].register_forward_hook(lambda mod, args, out: seen.append(out.detach()))
    h2 = blocks[3].register_forward_hook(lambda mod, args, out: calls.append(1))
    try:
        e = m.instance_embeddings(x)
    finally:
        h1.remove()
        h2.remove()
    assert len(seen) == 1 and not calls  # blocks 3.. never ran
    patch_tokens = seen[0][:, m.backbone.num_prefix_tokens:]  # (B, 16, 96): the class token left out
    torch.testing.assert_close(e, m.retriever(patch_tokens.mean(1)), rtol=1e-5, atol=1e-6)
    full = model()
    assert not torch.allclose(full.instance_embeddings(x), e, atol=1e-4)  # the whole backbone's output differs


def test_prepass_block_errors_name_the_fix():
    with pytest.raises(ValueError, match="needs retriever_features='prepass'"):
        model(retriever_features=1, prepass_block=2)
    with pytest.raises(ValueError, match='prepass_block=9 is not a block index'):
        model(prepass_block=9)
