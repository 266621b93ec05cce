"""AdapterLibraryHook (petl_vision/composition/library_hook.py): after training, each task's adapter of a
MultiTaskClassifier goes into the library (the LoRA alone, not the head) with the last val metrics and the domain
embedding of the preprocessed val images; models without per-task adapters are refused."""
from types import SimpleNamespace

import pytest
import torch

from petl_vision.composition import domain_embedding
from petl_vision.composition.library import AdapterLibrary, load_library
from petl_vision.composition.library_hook import AdapterLibraryHook
from petl_vision.models.classifier import ImageClassifier
from petl_vision.models.multitask_classifier import MultiTaskClassifier
from petl_vision.tuners import adapter_parameters, adapter_state

TINY = dict(model='vit_tiny_patch16_224', pretrained=False, img_size=32, patch_size=8, embed_dim=64, depth=2,
            num_heads=2)


def batches(n: int = 2):
    g = torch.Generator().manual_seed(0)
    return [{'inputs': torch.randint(0, 256, (3, 3, 32, 32), generator=g, dtype=torch.uint8),
             'data_samples': torch.zeros(3, dtype=torch.long)} for _ in range(n)]


def runner_of(model, tmp_path):
    logged = []
    return SimpleNamespace(model=model, val_dataloader=batches(), train_dataloader=batches(3), work_dir=tmp_path,
                           logger=SimpleNamespace(info=logged.append)), logged


def test_after_train_adds_the_adapter_metrics_and_embedding(tmp_path):
    model = MultiTaskClassifier(backbone=TINY, tasks={'cars': 7}, plan=[{'type': 'LoRA', 'rank': 2}]).eval()
    with torch.no_grad():
        for p in adapter_parameters(model.backbone, 'cars'):
            p.normal_(0, 0.1)
    runner, logged = runner_of(model, tmp_path)
    hook = AdapterLibraryHook(str(tmp_path / 'lib'), dataset='StanfordCars', embed_batches=2)
    hook.after_val_epoch(runner, {'accuracy/top1': 41.5})
    hook.after_train(runner)
    library = AdapterLibrary(tmp_path / 'lib')
    entry = library.get('cars')
    assert (entry.dataset, entry.task, entry.metrics) == ('StanfordCars', 'classification', {'accuracy/top1': 41.5})
    images = torch.cat([model.data_preprocessor(b, False)['inputs'] for b in batches()])
    expected = domain_embedding(model.backbone, images, 'cls')
    assert torch.allclose(torch.tensor(entry.embedding['vector']), expected, atol=1e-5)
    assert entry.embedding['pool'] == 'cls' and 'added adapter' in logged[0]
    fresh = MultiTaskClassifier(backbone=TINY, tasks={'x': 3}, plan='linear').backbone
    load_library(fresh, library.directory)
    loaded, saved = adapter_state(fresh, 'cars'), adapter_state(model.backbone, 'cars')
    assert sorted(loaded) == sorted(saved) and all(torch.equal(loaded[k], saved[k]) for k in saved)
    assert not any('head' in k for k in loaded)  # the adapter alone: the task's head is not in the library


def test_models_without_per_task_adapters_and_bad_settings_are_refused(tmp_path):
    single = ImageClassifier(backbone={**TINY, 'num_classes': 3}, plan='lora')
    runner, _ = runner_of(single, tmp_path)
    with pytest.raises(TypeError, match='named adapter per task.*MultiTaskClassifier'):
        AdapterLibraryHook(str(tmp_path / 'lib')).after_train(runner)
    assert not (tmp_path / 'lib').exists()
    with pytest.raises(ValueError, match="split must be 'val' or 'train'"):
        AdapterLibraryHook('lib', split='test')
    with pytest.raises(ValueError, match='pool must be one of'):
        AdapterLibraryHook('lib', pool='max')
