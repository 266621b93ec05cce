"""How the tools end: a user error (bad path, bad config, bad file) exits with one paragraph and code 1, a bug keeps
its traceback. ``--debug`` anywhere on the command line, or ``PETL_VISION_DEBUG=1``, shows the traceback always.

Every script under ``tools/`` ends with ``run_main(main)``. What counts as a user error (:func:`is_user_error`):

- an exception class defined in petl_vision (``ZooDownloadError``, ``UnsafeCheckpointError``, ...): each is raised
  with a message written for the user;
- an ``OSError`` naming a file (missing, a directory, no permission): a bad path, wherever it was raised;
- a ``ValueError`` / ``KeyError`` / ``TypeError`` / ``IndexError`` with a sentence for a message, raised by
  petl_vision, by the tool itself, or at mmengine's config boundary (config parsing and the registry that builds
  objects from config dicts: unknown types, unexpected keyword arguments);
- a ``SyntaxError`` in a config file.

Anything else (an ``IndexError`` deep inside torch, a ``KeyError`` with a bare key) is treated as a bug.
"""
import os
import re
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import NoReturn

DEBUG_FLAG = '--debug'
DEBUG_ENV = 'PETL_VISION_DEBUG'
USER_INPUT_ERRORS = (ValueError, KeyError, TypeError, IndexError)
_PACKAGE = Path(__file__).resolve().parent
_MMENGINE_BOUNDARY = (os.sep + os.path.join('mmengine', 'config') + os.sep,
                      os.sep + os.path.join('mmengine', 'registry') + os.sep)


def debug_requested(argv: list[str] | None = None) -> bool:
    argv = sys.argv if argv is None else argv
    return DEBUG_FLAG in argv[1:] or os.environ.get(DEBUG_ENV, '').lower() in ('1', 'true', 'yes', 'on')


def _innermost_file(tb: TracebackType | None) -> str:
    frames = traceback.extract_tb(tb)
    return frames[-1].filename if frames else ''


def _chain(error: BaseException) -> list[BaseException]:
    """``error`` and the exceptions it was raised from or while handling, outermost first."""
    chain, seen = [], set()
    while error is not None and id(error) not in seen:
        chain.append(error)
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return chain


def _raised_in(error: BaseException, roots: tuple[str, ...]) -> bool:
    return any(root in _innermost_file(e.__traceback__) for e in _chain(error) for root in roots)


def message_of(error: BaseException) -> str:
    """The error's message on one paragraph (``KeyError`` without the quotes ``str()`` adds)."""
    text = error.args[0] if len(error.args) == 1 and isinstance(error.args[0], str) else str(error)
    if isinstance(error, OSError) and error.filename and error.strerror:  # not "[Errno 2] ...: '/x'"
        text = f'{error.strerror}: {error.filename}'
    return re.sub(r'\s*\n\s*', ' ', text).strip()


def is_user_error(error: BaseException, tool_file: str | None = None) -> bool:
    """Whether ``error`` reached the tool because of what the user gave it (see the module docstring)."""
    if type(error).__module__.startswith('petl_vision.'):
        return True
    if isinstance(error, OSError):
        return error.filename is not None
    if isinstance(error, SyntaxError):  # a config file that does not parse, not our own code
        return not str(error.filename or '').startswith((str(_PACKAGE), str(Path(tool_file or _PACKAGE).parent)))
    if not isinstance(error, USER_INPUT_ERRORS) or ' ' not in message_of(error):
        return False
    roots = (str(_PACKAGE) + os.sep, *_MMENGINE_BOUNDARY, *([tool_file] if tool_file else []))
    return _raised_in(error, roots)


def run_main(main: Callable[[], int | None]) -> NoReturn:
    """Run a tool's ``main`` and exit: its return value as the exit code, a user error as one paragraph on stderr
    with code 1, a bug with its traceback. ``--debug`` is taken off ``sys.argv`` before ``main`` parses it."""
    debug = debug_requested()
    sys.argv = [sys.argv[0], *(a for a in sys.argv[1:] if a != DEBUG_FLAG)]
    tool_file = getattr(main, '__code__', None) and main.__code__.co_filename
    try:
        code = main()
    except Exception as error:  # noqa: BLE001 - sorted into user errors and bugs below
        if debug or not is_user_error(error, tool_file):
            raise
        prog = Path(sys.argv[0]).name
        print(f'{prog}: error: {message_of(error)} (if this looks like a bug, rerun with {DEBUG_FLAG} or '
              f'{DEBUG_ENV}=1 for the traceback)', file=sys.stderr)
        sys.exit(1)
    sys.exit(code or 0)
