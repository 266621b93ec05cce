"""``ResumableEpochBasedTrainLoop``: epoch-based training that resumes exactly, mid-epoch and with augmentation."""
from mmengine.dist import get_rank
from mmengine.logging import print_log
from mmengine.runner import EpochBasedTrainLoop
from torch.utils.data import DataLoader

from ..registry import LOOPS
from .distributed import mean_over_ranks
from .seeding import SeededSampler, derive_seed, seed_everything, seeded_dataloader


@LOOPS.register_module()
class ResumableEpochBasedTrainLoop(EpochBasedTrainLoop):
    """mmengine's ``EpochBasedTrainLoop`` (same arguments) whose runs resume bit for bit, with three changes.

    - **Mid-epoch resume.** Resumed from an iteration checkpoint (``CheckpointHook(by_epoch=False)``, e.g.
      ``iter_150.pth`` in the middle of epoch 2), mmengine 0.10's loop restarts the epoch at its first batch: the
      batches before the checkpoint are trained twice and the run takes more steps than
      ``max_epochs * len(dataloader)``. This loop draws the epoch's batches in the same order (the sampler is seeded
      by seed and epoch) and discards those the checkpoint had already trained, as mmengine's
      ``IterBasedTrainLoop`` does. Discarded batches are still loaded: resuming costs one pass of data loading over
      the part of the epoch already done. Resuming from an epoch checkpoint discards nothing.
    - **Randomness from integers** (:mod:`.seeding`): each training sample is augmented from
      ``(seed, epoch, sample index)`` and each iteration seeds the global generators from ``(seed, rank,
      iteration)``, so neither a resume, nor the number of ranks or workers, nor the batches skipped change a draw.
      The training dataloader built from a config gets :class:`~.seeding.SeededDataset` and
      :class:`~.seeding.SeededSampler` around its dataset and sampler.
    - **Logged losses are the mean over ranks** (one all-reduce per iteration): rank 0 logs what the whole
      batch did, not its own share.
    """

    def __init__(self, runner, dataloader: DataLoader | dict, max_epochs: int, val_begin: int = 1,
                 val_interval: int = 1, dynamic_intervals: list[tuple[int, int]] | None = None) -> None:
        if isinstance(dataloader, dict):
            dataloader = seeded_dataloader(dataloader)
        else:
            print_log('ResumableEpochBasedTrainLoop got a built DataLoader: its augmentation continues the global '
                      'generators and a resumed run is not bit-identical; pass the dataloader as a config for that',
                      logger='current', level='WARNING')
        super().__init__(runner, dataloader, max_epochs, val_begin, val_interval, dynamic_intervals)

    def _sample_seeds(self) -> SeededSampler | None:
        for sampler in (self.dataloader.sampler, getattr(self.dataloader.batch_sampler, 'sampler', None)):
            if isinstance(sampler, SeededSampler):
                return sampler
        return None

    def run_epoch(self) -> None:
        self.runner.call_hook('before_train_epoch')
        self.runner.model.train()
        seeds = self._sample_seeds()
        if seeds is not None:  # the seed after a resume is the checkpoint's (mmengine restores it)
            seeds.seed, seeds.epoch = self.runner.seed, self._epoch
        done = self._iter - self._epoch * len(self.dataloader)  # batches of this epoch trained before the checkpoint
        for idx, data_batch in enumerate(self.dataloader):
            if idx >= done:
                self.run_iter(idx, data_batch)
        self.runner.call_hook('after_train_epoch')
        self._epoch += 1

    def run_iter(self, idx: int, data_batch) -> None:
        seed_everything(derive_seed(self.runner.seed, get_rank(), self._iter))
        self.runner.call_hook('before_train_iter', batch_idx=idx, data_batch=data_batch)
        outputs = self.runner.model.train_step(data_batch, optim_wrapper=self.runner.optim_wrapper)
        outputs = mean_over_ranks(outputs)
        self.runner.call_hook('after_train_iter', batch_idx=idx, data_batch=data_batch, outputs=outputs)
        self._iter += 1
