"""A hook for the kill-and-resume test: the process SIGKILLs itself after training iteration
``$PETL_TEST_KILL_AFTER_ITER`` (counted from 1); without that variable it does nothing."""
import os
import signal

from mmengine.hooks import Hook

from petl_vision.registry import HOOKS

KILL_AFTER = 'PETL_TEST_KILL_AFTER_ITER'


@HOOKS.register_module()
class SigkillAfterIter(Hook):
    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        if runner.iter + 1 == int(os.environ.get(KILL_AFTER, 0)):
            os.kill(os.getpid(), signal.SIGKILL)  # no cleanup, no exception: as a killed job dies
