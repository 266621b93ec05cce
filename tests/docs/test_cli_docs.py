"""docs/cli.md is what the tools' argparse definitions say (regenerate: python tools/misc/make_cli_docs.py)."""
from tests.conftest import load_tool


def test_the_cli_page_is_current():
    tool = load_tool('misc/make_cli_docs.py')
    assert tool.DOC.read_text() == tool.render(), 'docs/cli.md is out of date: run python tools/misc/make_cli_docs.py'


def test_every_tool_with_flags_is_on_the_page():
    tool = load_tool('misc/make_cli_docs.py')
    scripts = {p.relative_to(tool.ROOT / 'tools').as_posix() for p in (tool.ROOT / 'tools').rglob('*.py')
               if 'argparse' in p.read_text()}
    assert scripts == set(tool.TOOLS)
