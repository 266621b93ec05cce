"""The ```python blocks of the docs, their markers, and how a block is run with its claims checked.

Before every block an HTML comment (invisible on GitHub and on the site) says what the tests do with it:

- ``<!-- example: runs -->``: run as written, in a fresh namespace, in an empty temporary folder.
- ``<!-- example: random-weights -->``: run as written, except that ``timm.create_model(..., pretrained=True)``
  builds random weights instead of downloading them (parameter counts and shapes do not depend on the weights).
- ``<!-- example: config -->``: a config fragment: run, then every ``type='X'`` in the dicts it defines must name
  a registered class (an mmengine/petl_vision registry or a tuner type).
- ``<!-- example: not-run -->``: not run (it needs real data, real weights or a GPU); it must still parse.

Every kind but ``runs`` needs a visible sentence between the marker and the block saying so (and why).
A top-level expression whose trailing comment is a Python literal is a claim: ``count_parameters(m)  # {'a': 1}``
(or ``print(x)  # 3``) is checked to equal the literal.
"""
import ast
import io
import re
import tokenize
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
KINDS = ('runs', 'random-weights', 'config', 'not-run')
EXECUTED = ('runs', 'random-weights', 'config')
FENCE = re.compile(r'^```python[^\n]*\n(?P<code>.*?)^```', re.S | re.M)
ANY_FENCE = re.compile(r'^```[^\n]*\n.*?^```', re.S | re.M)
MARKER = re.compile(r'<!--\s*example:\s*(?P<kind>[\w-]+)\s*-->')
_NO_CLAIM = object()


@dataclass(frozen=True)
class Block:
    doc: str  # path relative to the repository
    line: int  # line of the opening fence
    code: str
    kind: str | None  # None: no marker
    note: str  # visible text between the marker and the fence

    @property
    def id(self) -> str:
        return f'{self.doc}:{self.line}'


def docs() -> list[Path]:
    return sorted({ROOT / 'README.md', *ROOT.glob('docs/**/*.md')})


def blocks(path: Path) -> list[Block]:
    """The ```python blocks of a markdown file, each with the marker found since the previous fenced block."""
    rel = str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else path.name
    text, found, previous_end = path.read_text(), [], 0
    for fence in ANY_FENCE.finditer(text):
        match = FENCE.match(text, fence.start())
        if match:
            between = text[previous_end:fence.start()]
            markers = list(MARKER.finditer(between))
            marker = markers[-1] if markers else None
            note = MARKER.sub('', between[marker.end():]).strip() if marker else ''
            found.append(Block(rel, text.count('\n', 0, fence.start()) + 1, match['code'],
                               marker['kind'] if marker else None, note))
        previous_end = fence.end()
    return found


def all_blocks() -> list[Block]:
    return [block for path in docs() for block in blocks(path)]


def _literal(comment: str | None):
    try:
        return ast.literal_eval(comment) if comment else _NO_CLAIM
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return _NO_CLAIM


def with_claims(code: str) -> tuple[ast.Module, int]:
    """``code`` parsed, each top-level ``expr  # literal`` turned into ``__claim__(line, expr, literal)``; the
    number of claims."""
    comments = {tok.start[0]: tok.string[1:].strip() for tok in tokenize.generate_tokens(io.StringIO(code).readline)
                if tok.type == tokenize.COMMENT}
    tree, claims = ast.parse(code), 0
    for i, node in enumerate(tree.body):
        if not isinstance(node, ast.Expr) or _literal(comments.get(node.end_lineno)) is _NO_CLAIM:
            continue
        value = node.value
        if isinstance(value, ast.Call) and getattr(value.func, 'id', None) == 'print' and len(value.args) == 1:
            value = value.args[0]
        call = ast.Call(ast.Name('__claim__', ast.Load()),
                        [ast.Constant(node.lineno), value, ast.Constant(comments[node.end_lineno])], [])
        tree.body[i] = ast.copy_location(ast.Expr(call), node)
        claims += 1
    return ast.fix_missing_locations(tree), claims


def claim(line: int, value, literal: str) -> None:
    expected = ast.literal_eval(literal)
    assert value == expected, f'line {line} of the block: the doc says {literal}, the code gives {value!r}'


def run(block: Block) -> dict:
    """Execute ``block`` in a fresh namespace with its claims checked; the namespace afterwards."""
    tree, _ = with_claims(block.code)
    namespace = {'__name__': '__doc_example__', '__claim__': claim}
    exec(compile(tree, block.id, 'exec'), namespace)  # noqa: S102 (running the docs is the point)
    return namespace


def config_types(value) -> list[str]:
    """Every ``type`` string of the dicts nested in ``value``."""
    if isinstance(value, dict):
        own = [value['type']] if isinstance(value.get('type'), str) else []
        return own + [t for v in value.values() for t in config_types(v)]
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in config_types(v)]
    return []
