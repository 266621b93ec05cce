"""Import every module that registers into petl_vision's mmengine registries, set the default scope, and keep
mmengine's log to what a user can act on."""
import contextlib
import functools
import importlib
import logging
from collections.abc import Iterator

from mmengine.logging import MMLogger
from mmengine.registry import DefaultScope

from .runtime_threads import set_torch_threads  # noqa: F401  (the tools call setup_env.set_torch_threads())

_MODULES = ('petl_vision.demo', 'petl_vision.models', 'petl_vision.datasets', 'petl_vision.evaluation',
            'petl_vision.engine', 'petl_vision.zoo')

# mmengine messages that name nothing a user could change; dropped from the console and from the log files
NOT_ACTIONABLE = (
    # petl_vision's scope has no registry of its own for mmengine's visualizers, optimizers, schedulers, ...;
    # the mmengine registry it falls back to is the right one
    'Failed to search registry with scope "petl_vision"',
    # the frozen backbone, one line per tensor (hundreds on ViT-B) when a config has a paramwise_cfg
    'is skipped since its requires_grad=False',
    # mmengine's own CheckpointHook uses the deprecated file client
    '"FileClient" will be deprecated in future',
    '"HardDiskBackend" is the alias of "LocalBackend"',
)


class NotActionableFilter(logging.Filter):
    """Drops the records whose message contains one of :data:`NOT_ACTIONABLE`."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(text in message for text in NOT_ACTIONABLE)


_FILTER = NotActionableFilter()
_console = {'level': None}  # set by console_log_level() for the loggers created meanwhile


def register_all_modules(init_default_scope: bool = True) -> None:
    """Also makes every mmengine checkpoint load (``load_from``, resume, ``zoo://``) use the safe loader and
    installs :class:`NotActionableFilter` on every mmengine logger created from now on."""
    from .engine.safe_load import patch_mmengine_resume

    for name in _MODULES:
        importlib.import_module(name)
    patch_mmengine_resume()
    quiet_mmengine_logs()
    if init_default_scope and DefaultScope.get_current_instance() is None:
        DefaultScope.get_instance('petl_vision', scope_name='petl_vision')


def quiet_mmengine_logs() -> None:
    """Wrap ``MMLogger.__init__`` (once) so that each new logger (a Runner makes one per run) gets the filter and,
    inside :func:`console_log_level`, a quieter console handler."""
    if getattr(MMLogger.__init__, '_petl_vision', False):
        return
    init = MMLogger.__init__

    @functools.wraps(init)
    def quiet_init(self: MMLogger, *args, **kwargs) -> None:
        init(self, *args, **kwargs)
        self.addFilter(_FILTER)
        if _console['level'] is not None:
            for handler in self.handlers:
                if type(handler) is logging.StreamHandler:  # the console; FileHandler subclasses it
                    handler.setLevel(max(handler.level, _console['level']))

    quiet_init._petl_vision = True
    MMLogger.__init__ = quiet_init


@contextlib.contextmanager
def console_log_level(level: int | str) -> Iterator[None]:
    """While active, the mmengine loggers created print only ``level`` and above to the console; their log files
    (``<work_dir>/<timestamp>/<timestamp>.log``) keep the config's ``log_level``."""
    quiet_mmengine_logs()
    previous = _console['level']
    _console['level'] = level if isinstance(level, int) else logging.getLevelNamesMapping()[level.upper()]
    try:
        yield
    finally:
        _console['level'] = previous
