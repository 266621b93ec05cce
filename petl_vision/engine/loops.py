"""``ResumableEpochBasedTrainLoop``: epoch-based training that resumes mid-epoch exactly."""
from mmengine.runner import EpochBasedTrainLoop

from ..registry import LOOPS


@LOOPS.register_module()
class ResumableEpochBasedTrainLoop(EpochBasedTrainLoop):
    """mmengine's ``EpochBasedTrainLoop`` (same arguments) that continues an epoch where its checkpoint left it.

    Resumed from an iteration checkpoint (``CheckpointHook(by_epoch=False)``, e.g. ``iter_150.pth`` in the middle
    of epoch 2), mmengine 0.10's loop restarts the epoch at its first batch: the batches before the checkpoint are
    trained twice and the run takes more steps than ``max_epochs * len(dataloader)``. This loop draws the epoch's
    batches in the same order (the sampler is seeded by seed and epoch) and discards those the checkpoint had already
    trained, as mmengine's ``IterBasedTrainLoop`` does, so the resumed run makes the same updates as an
    uninterrupted one. Discarded batches are still loaded: resuming costs one pass of data loading over the part
    of the epoch already done. Resuming from an epoch checkpoint discards nothing.
    """

    def run_epoch(self) -> None:
        self.runner.call_hook('before_train_epoch')
        self.runner.model.train()
        done = self._iter - self._epoch * len(self.dataloader)  # batches of this epoch trained before the checkpoint
        for idx, data_batch in enumerate(self.dataloader):
            if idx >= done:
                self.run_iter(idx, data_batch)
        self.runner.call_hook('after_train_epoch')
        self._epoch += 1
