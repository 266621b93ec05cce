"""Write docs/cli.md: every tool's flags, from its own argparse definition (so the page cannot drift).

    python tools/misc/make_cli_docs.py            # rewrite docs/cli.md
    python tools/misc/make_cli_docs.py --check    # exit 1 if docs/cli.md is not what the tools define

Each tool is imported and its argument parser captured at the moment it would parse (``parse_args`` is replaced
for the duration by one that hands the parser back), so tools need no special structure; subcommands (``zoo.py
download``) are listed with their own flags.
"""
import argparse
import contextlib
import importlib.util
import inspect
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ['train.py', 'test.py', 'run_benchmark_suite.py', 'benchmark.py', 'fewshot_eval.py', 'continual.py',
         'prepare_data.py', 'publish.py', 'zoo.py', 'adapters.py', 'make_demo_backbone.py', 'analysis/param_table.py',
         'analysis/seed_summary.py', 'analysis/sign_difference.py', 'analysis/adapter_library.py',
         'analysis/pha_sample_efficiency.py', 'analysis/pha_fewshot_transfer.py', 'analysis/pha_retrieval.py',
         'misc/make_method_configs.py', 'misc/make_cli_docs.py']
DOC = ROOT / 'docs' / 'cli.md'
HEADER = """# Command-line tools

Every tool's flags, as its `--help` prints them (written by `python tools/misc/make_cli_docs.py` from the
argparse definitions; `tests/docs/test_cli_docs.py` fails when this page and the tools disagree). User errors end
with one paragraph and exit code 1; `--debug` or `PETL_VISION_DEBUG=1` shows the traceback. Torch CPU threads:
`--threads` where a tool has it, else `PETL_VISION_THREADS`, `OMP_NUM_THREADS`, else half the CPUs (README).
`tools/dist_train.sh CONFIG GPUS [ARGS]` runs `tools/train.py` under torchrun (`docs/distributed.md`).
"""


class _Captured(Exception):
    def __init__(self, parser: argparse.ArgumentParser):
        self.parser = parser


def _load(relative: str):
    path = ROOT / 'tools' / relative
    spec = importlib.util.spec_from_file_location(f'_cli_{path.stem}', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def capture_parser(relative: str) -> argparse.ArgumentParser:
    """The parser ``tools/<relative>`` builds, caught when it is about to parse."""
    module = _load(relative)
    entry = getattr(module, 'parse_args', None) or module.main

    def hand_back(self, *args, **kwargs):
        raise _Captured(self)

    original = argparse.ArgumentParser.parse_args
    argparse.ArgumentParser.parse_args = hand_back
    required = [p for p in inspect.signature(entry).parameters.values() if p.default is p.empty]
    try:
        with contextlib.redirect_stdout(sys.stderr):
            entry(*[[] for _ in required])  # an argv-taking entry gets an empty one
    except _Captured as captured:
        return captured.parser
    finally:
        argparse.ArgumentParser.parse_args = original
    raise RuntimeError(f'tools/{relative} did not build an argument parser before returning')


def help_text(parser: argparse.ArgumentParser) -> str:
    parts = [parser.format_help().rstrip()]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                parts.append(f'--- {name} ---\n{sub.format_help().rstrip()}')
    return '\n\n'.join(parts)


def render() -> str:
    os.environ['COLUMNS'] = '110'  # argparse wraps to the terminal: fix it, so the page is the same everywhere
    sections = [HEADER]
    for tool in TOOLS:
        parser = capture_parser(tool)
        parser.prog = f'python tools/{tool}'
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    sub.prog = f'python tools/{tool} {name}'
        sections.append(f'## tools/{tool}\n\n```text\n{help_text(parser)}\n```\n')
    return '\n'.join(sections)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--check', action='store_true', help='exit 1 if docs/cli.md is out of date')
    args = parser.parse_args()
    text = render()
    if args.check:
        if DOC.read_text() != text:
            raise SystemExit(f'{DOC} is out of date: run python tools/misc/make_cli_docs.py')
        return
    DOC.write_text(text)
    print(f'written: {DOC}')


if __name__ == '__main__':
    main()
