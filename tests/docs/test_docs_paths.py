"""The docs cannot drift from the repository: every config path they name exists and parses (mmengine
``Config.fromfile``), every other path into the repository (tools, tests, the package, docs) exists, and every
command that runs a tool is written so it runs (``python tools/X.py``, not ``tools/X.py``) with flags the tool
defines."""
import re
from functools import cache
from pathlib import Path

import pytest
from mmengine.config import Config

ROOT = Path(__file__).resolve().parents[2]
DOCS = sorted({ROOT / 'README.md', ROOT / 'petl_vision' / 'demo' / 'README.md', *ROOT.glob('docs/**/*.md'),
               *ROOT.glob('configs/**/README.md')})
CONFIG_PATH = re.compile(r'(?<![\w/.-])configs/[\w./-]+\.py\b')
REPO_PATH = re.compile(r'(?<![\w/.-])(?:tools|tests|petl_vision|docs)/[\w./-]*\w')  # up to a glob or placeholder
# a command that runs a tool: optional `$ ` and VAR=value prefixes, then a launcher or the bare script
COMMAND = re.compile(r'^(?:\$\s+)?(?:[A-Z_]+=\S+\s+)*(?P<launcher>(?:python3?|torchrun|bash)\b[^`|;&]*?\s)?'
                     r'(?P<tool>tools/[\w./-]+\.(?:py|sh))(?P<args>(?:\s[^`|;&]*)?)$')
FLAG = re.compile(r'(?<![\w-])--[a-z][\w-]*')
GLOBAL_FLAGS = {'--debug'}  # petl_vision.cli.run_main, every tool
FENCE = re.compile(r'^```[^\n]*\n(.*?)^```', re.S | re.M)
INLINE = re.compile(r'`([^`\n]+)`')


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def code_lines(text: str) -> list[str]:
    """Lines of fenced blocks (backslash continuations joined) and inline code spans outside them."""
    lines = []
    for block in FENCE.findall(text):
        lines += [line.strip() for line in block.replace('\\\n', ' ').splitlines() if line.strip()]
    lines += [span.strip() for span in INLINE.findall(FENCE.sub('', text))]
    return lines


def tool_commands(text: str) -> list[re.Match]:
    """The code lines that run a tool with arguments (a bare `tools/x.py` span names the file, it runs nothing)."""
    matches = [COMMAND.match(line) for line in code_lines(text)]
    return [m for m in matches if m and (m['launcher'] or m['args'].strip())]


@cache
@cache
def tool_flags(tool: str) -> frozenset[str]:
    """The options the tool's own argument parser defines (subcommands' included), captured as docs/cli.md is."""
    import argparse

    from tests.conftest import load_tool

    parser = load_tool('misc/make_cli_docs.py').capture_parser(tool.removeprefix('tools/'))
    parsers = [parser] + [sub for a in parser._actions if isinstance(a, argparse._SubParsersAction)
                          for sub in a.choices.values()]
    return frozenset(opt for p in parsers for a in p._actions for opt in a.option_strings)


def parses(config: str) -> str:
    """'' when ``config`` parses, else the error."""
    try:
        Config.fromfile(str(ROOT / config))
    except Exception as err:  # noqa: BLE001 (any parse failure is the finding)
        return f'{type(err).__name__}: {err}'
    return ''


@pytest.mark.parametrize('doc', DOCS, ids=_rel)
def test_config_paths_exist_and_parse(doc):
    named = sorted(set(CONFIG_PATH.findall(doc.read_text())))
    missing = [c for c in named if not (ROOT / c).is_file()]
    assert not missing, f'{_rel(doc)} names configs that do not exist: {missing}'
    broken = {c: parses(c) for c in named if parses(c)}
    assert not broken, f'{_rel(doc)} names configs that do not parse: {broken}'


@pytest.mark.parametrize('doc', DOCS, ids=_rel)
def test_repository_paths_exist(doc):
    missing = sorted({p for p in REPO_PATH.findall(doc.read_text()) if not (ROOT / p).exists()})
    assert not missing, f'{_rel(doc)} names paths that do not exist: {missing}'


@pytest.mark.parametrize('doc', DOCS, ids=_rel)
def test_tool_commands_run_as_written(doc):
    problems = []
    for m in tool_commands(doc.read_text()):
        tool, args = m['tool'], m['args'].split()
        if not m['launcher'] and tool.endswith('.py'):
            problems.append(f'`{m.group(0)}`: the script is not executable, write `python {tool} ...`')
        defined = tool_flags(tool) if (ROOT / tool).is_file() and tool.endswith('.py') else set()
        unknown = [f for f in FLAG.findall(m['args']) if f not in GLOBAL_FLAGS and f not in defined]
        if tool.endswith('.py') and unknown:
            problems.append(f'`{m.group(0)}`: {tool} defines no {unknown}')
        paths = [a for a in args if a.startswith(('configs/', 'tools/')) and '<' not in a and '*' not in a]
        problems += [f'`{m.group(0)}`: {p} does not exist' for p in paths if not (ROOT / p).exists()]
    assert not problems, f'{_rel(doc)}:\n' + '\n'.join(problems)


def test_the_scan_finds_what_it_checks():
    """The patterns on a sample: a guard against a regex that silently matches nothing."""
    text = ('Run `tools/train.py configs/a/b.py --work-dir x` or\n```bash\nOMP_NUM_THREADS=1 python tools/test.py '
            'configs/c.py \\\n  ckpt --cfg-options a=1\n```\nand `tools/zoo.py` (a file), not configs/x_*.py.')
    commands = tool_commands(text)
    assert [(m['launcher'], m['tool'], m['args'].split()) for m in commands] == [
        ('python ', 'tools/test.py', ['configs/c.py', 'ckpt', '--cfg-options', 'a=1']),
        (None, 'tools/train.py', ['configs/a/b.py', '--work-dir', 'x'])]
    assert CONFIG_PATH.findall(text) == ['configs/a/b.py', 'configs/c.py']
    assert REPO_PATH.findall(text) == ['tools/train.py', 'tools/test.py', 'tools/zoo.py']
    assert REPO_PATH.findall('`petl_vision/tuners/<name>.py`, tests/points, LMD0311/DAPT/tools/builder.py') == [
        'petl_vision/tuners', 'tests/points']
    assert len(DOCS) > 20 and ROOT / 'docs' / 'distributed.md' in DOCS
