"""Every ```python block of README.md and docs/**/*.md runs here, or says visibly why it does not
(the markers: tests/docs/examples.py)."""
import ast

import mmengine.registry
import pytest
import timm

import petl_vision.registry
from petl_vision.tuners.registry import TUNERS
from tests.docs.examples import EXECUTED, KINDS, ROOT, Block, all_blocks, blocks, config_types, docs, run, with_claims

BLOCKS = all_blocks()


@pytest.fixture
def tuner_registry_restored():
    """A tuner a block registers (contributing.md's example) leaves with the block."""
    saved = dict(TUNERS)
    yield
    TUNERS.clear()
    TUNERS.update(saved)


def _random_weights(create_model):
    def create(*args, **kwargs):
        return create_model(*args, **{**kwargs, 'pretrained': False})
    return create


def _registered(name: str) -> bool:
    registries = [r for module in (petl_vision.registry, mmengine.registry) for r in vars(module).values()
                  if isinstance(r, mmengine.registry.Registry)]
    return name in TUNERS or any(r.get(name) is not None for r in registries)


@pytest.mark.parametrize('doc', docs(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_python_block_is_marked(doc):
    problems = []
    for block in blocks(doc):
        if block.kind not in KINDS:
            problems.append(f'{block.id}: put one of ' + ', '.join(f'<!-- example: {k} -->' for k in KINDS)
                            + f' before the block (got {block.kind!r}; see tests/docs/examples.py)')
        elif block.kind != 'runs' and not block.note:
            problems.append(f'{block.id}: a {block.kind!r} block needs a visible sentence between its marker and '
                            'the block saying what the tests do with it and why')
    assert not problems, '\n'.join(problems)


@pytest.mark.parametrize('block', [b for b in BLOCKS if b.kind == 'not-run'], ids=lambda b: b.id)
def test_blocks_not_run_still_parse(block):
    ast.parse(block.code, block.id)


@pytest.mark.parametrize('block', [b for b in BLOCKS if b.kind in EXECUTED], ids=lambda b: b.id)
def test_block_runs_and_its_claims_hold(block: Block, tmp_path, monkeypatch, tuner_registry_restored):
    monkeypatch.chdir(tmp_path)
    if block.kind == 'random-weights':
        monkeypatch.setattr(timm, 'create_model', _random_weights(timm.create_model))
    namespace = run(block)
    if block.kind == 'config':
        types = [t for value in namespace.values() for t in config_types(value)]
        assert types, f'{block.id} is marked config but defines no dict with a type'
        unknown = sorted({t for t in types if not _registered(t)})
        assert not unknown, f'{block.id} names types no registry knows: {unknown}'


def test_the_harness_checks_claims_and_markers(tmp_path):
    """The mechanism on a sample: a wrong claim fails, a right one passes, a missing marker is found."""
    _, claims = with_claims("x = 2\nx + 1  # 3\nprint(x)  # 2\nx  # a comment, not a literal\n")
    assert claims == 2
    run(Block('sample.md', 1, 'x = 2\nx + 1  # 3\n', 'runs', ''))
    with pytest.raises(AssertionError, match='the doc says 4'):
        run(Block('sample.md', 1, 'x = 2\nx + 1  # 4\n', 'runs', ''))
    page = tmp_path / 'page.md'
    page.write_text('<!-- example: runs -->\n```python\na = 1\n```\n\n```bash\nls\n```\n```python\nb = 2\n```\n'
                    '<!-- example: not-run -->\n*Needs a GPU.*\n\n```python\nc = 3\n```\n')
    assert [(b.line, b.kind, b.note) for b in blocks(page)] == [(2, 'runs', ''), (9, None, ''),
                                                                  (15, 'not-run', '*Needs a GPU.*')]
    assert _registered('PackInputs') and _registered('LoRA') and not _registered('NoSuchTransform')
    assert len(BLOCKS) > 20 and sum(b.kind in EXECUTED for b in BLOCKS) > 15
