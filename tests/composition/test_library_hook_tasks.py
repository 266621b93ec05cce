"""AdapterLibraryHook on a multi-task model whose val loader is in task order (MultiTaskDataset concatenates the
tasks, the val sampler does not shuffle): each task's embedding reads ``embed_batches`` batches holding that task,
not the loader's first batches (which hold only the first task)."""
from types import SimpleNamespace

import torch

from petl_vision.composition import domain_embedding
from petl_vision.composition.library import AdapterLibrary
from petl_vision.composition.library_hook import AdapterLibraryHook
from petl_vision.models.multitask_classifier import MultiTaskClassifier
from tests.composition.test_library_hook import TINY


def task_batches(task: str, n: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    return [{'inputs': torch.randint(0, 256, (3, 3, 32, 32), generator=g, dtype=torch.uint8),
             'data_samples': torch.zeros(3, dtype=torch.long), 'task': [task] * 3} for _ in range(n)]


def test_every_task_of_a_task_ordered_val_loader_gets_its_own_embedding(tmp_path):
    model = MultiTaskClassifier(backbone=TINY, tasks={'cars': 7, 'dogs': 5}, plan=[{'type': 'LoRA', 'rank': 2}])
    model.eval()
    val = task_batches('cars', 3, 0) + task_batches('dogs', 2, 1)
    runner = SimpleNamespace(model=model, val_dataloader=val, train_dataloader=val, work_dir=tmp_path,
                             logger=SimpleNamespace(info=lambda s: None))
    AdapterLibraryHook(str(tmp_path / 'lib'), embed_batches=2).after_train(runner)
    library = AdapterLibrary(tmp_path / 'lib')
    for task, chosen in (('cars', val[:2]), ('dogs', val[3:])):
        images = torch.cat([model.data_preprocessor(b, False)['inputs'] for b in chosen])
        expected = domain_embedding(model.backbone, images, 'cls')
        got = torch.tensor(library.get(task).embedding['vector'])
        assert torch.allclose(got, expected, atol=1e-5), task
