import numpy as np
import pytest
import torch

from petl_vision.datasets.episodes import EpisodeSampler, FixedProtocol
from petl_vision.fewshot import FewShotDomain, FewShotEvaluator, embed, frozen_prototype_baseline, prolad_losses
from petl_vision.fewshot import prolad as prolad_module
from petl_vision.fewshot.adaptation import SupportSchedule
from petl_vision.fewshot.baselines import TSA, LinearHead, TSAConfig, TunerBaseline, attach_baseline
from petl_vision.fewshot.prolad import ProLAD, ProLADConfig, attach_prolad
from petl_vision.tuners import tuned_ops
from petl_vision.tuners.prolad import TAN
from tests.conftest import tiny_vit

SHORT = SupportSchedule(max_iter=12, patience=2)


def synthetic_task(seed: int, n_way: int = 4, shots: int = 3, noise: float = 6.0):
    """Each class: a random 32 px image; examples: it plus strong noise (a random tiny ViT mixes some of them up)."""
    g = torch.Generator().manual_seed(seed)
    protos = torch.randn(n_way, 3, 32, 32, generator=g)
    y = torch.arange(n_way).repeat_interleave(shots)
    return protos[y] + noise * torch.randn(len(y), 3, 32, 32, generator=g), y


def prolad_model():
    return attach_prolad(tiny_vit(num_classes=0).eval())


def test_progressive_learning_fits_the_support_set_the_frozen_backbone_cannot():
    x, y = synthetic_task(0)
    method = ProLAD(prolad_model(), ProLADConfig(schedule=SHORT))
    torch.manual_seed(0)
    record = method.adapt(x, y)
    assert record.frozen_accuracy == pytest.approx(10 / 12)  # nearest centroid on frozen features: 10 of 12
    assert record.stage1.support_accuracy == 1.0 and record.stage2.support_accuracy == 1.0
    assert record.stage1.iterations == 7 and record.stage2.iterations == 3  # early stop: 3 steps above 99%
    assert 0 < record.a < 1
    logits = method(x, y, x, 4)  # after adaptation the adapted model classifies its own support set
    assert (logits.argmax(1) == y).float().mean().item() == 1.0


def test_adaptive_coefficient_comes_from_the_frozen_backbone():
    x, y = synthetic_task(1)
    frozen_feats = embed(tiny_vit(num_classes=0).eval(), x)
    method = ProLAD(prolad_model(), ProLADConfig(schedule=SHORT))
    torch.manual_seed(0)
    record = method.adapt(x, y)
    assert record.a == pytest.approx(prolad_losses.prolad_coefficient(frozen_feats, y), rel=1e-6)


def test_stage2_distils_from_stage1_features(monkeypatch):
    x, y = synthetic_task(2)
    model = prolad_model()
    method = ProLAD(model, ProLADConfig(schedule=SHORT))
    seen = []

    def spy(student, teacher):
        seen.append(teacher)
        return prolad_losses.distillation_loss(student, teacher)

    monkeypatch.setattr(prolad_module, 'distillation_loss', spy)
    torch.manual_seed(0)
    prolad_module.reset_tuners(model, prolad_module.PROLAD_TUNERS)
    method.stage1(x, y)
    method.set_mode('ta')
    stage1_features = embed(model, x)  # TA and beta_ta, after stage 1
    teacher = method.teacher(x)
    torch.testing.assert_close(teacher, stage1_features, rtol=0, atol=0)
    method.stage2(x, y, teacher, a=0.5)
    assert seen and all(t is teacher for t in seen)  # every stage-2 step distils towards stage 1's features
    tan_norms = [t.norm for op in tuned_ops(model) for _, _, t in op.all_tuners() if isinstance(t, TAN)]
    assert tan_norms and all(int(n.num_batches) == len(seen) for n in tan_norms)  # support batch statistics


def test_no_state_leaks_between_episodes():
    a, b = synthetic_task(3), synthetic_task(4)
    model = prolad_model()
    frozen = {k: v.clone() for k, v in model.state_dict().items() if '.tuners.' not in k}
    method = ProLAD(model, ProLADConfig(schedule=SHORT))
    torch.manual_seed(0)
    method(*a, a[0], 4)
    torch.manual_seed(1)
    after_a = method(*b, b[0], 4)
    fresh = ProLAD(prolad_model(), ProLADConfig(schedule=SHORT))
    torch.manual_seed(1)
    alone = fresh(*b, b[0], 4)
    torch.testing.assert_close(after_a, alone, rtol=0, atol=1e-6)  # episode b does not see episode a
    for k, v in model.state_dict().items():
        if k in frozen:
            assert torch.equal(v, frozen[k]), f'frozen {k} changed'


def test_baselines_run_in_the_evaluator_and_restore_the_model():
    labels = np.repeat(np.arange(4), 6)
    g = torch.Generator().manual_seed(5)
    protos = torch.randn(4, 3, 32, 32, generator=g)
    images = protos[torch.as_tensor(labels)] + 2.0 * torch.randn(len(labels), 3, 32, 32, generator=g)
    domain = FewShotDomain('synthetic', EpisodeSampler(labels, FixedProtocol(n_way=3, k_shot=2, n_query=2)),
                           lambda idx: images[torch.as_tensor(idx)])
    accuracy = {}
    for name in ('frozen', 'head', 'tsa', 'lora', 'ssf'):
        model = tiny_vit(num_classes=0).eval()
        if name == 'frozen':
            adapt = frozen_prototype_baseline(model)
        elif name == 'head':
            adapt = LinearHead(model, iters=20)
        elif name == 'tsa':
            adapt = TSA(attach_baseline(model, 'tsa'), TSAConfig(schedule=SupportSchedule(max_iter=5, patience=None)))
        else:
            adapt = TunerBaseline(attach_baseline(model, name), schedule=SupportSchedule(max_iter=5, optimizer='adam'))
        before = {k: v.clone() for k, v in model.state_dict().items()}
        result = FewShotEvaluator(adapt, model, num_episodes=2, progress=False).evaluate([domain])
        accuracy[name] = result.domains['synthetic'].accuracies.tolist()
        for k, v in model.state_dict().items():
            assert torch.equal(v, before[k]), f'{name}: {k} not restored'
    np.testing.assert_allclose(accuracy['frozen'], [5 / 6, 4 / 6], rtol=1e-6)
    np.testing.assert_allclose(accuracy['ssf'], [5 / 6, 4 / 6], rtol=1e-6)
    for name in ('head', 'tsa', 'lora'):  # adapting fixes episode 0's one mistake
        np.testing.assert_allclose(accuracy[name], [1.0, 4 / 6], rtol=1e-6)
