"""The quick-start results are printed in two places, README.md and petl_vision/demo/README.md: the same runs,
so the same trainable counts and accuracies, method by method."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ROW = re.compile(r'^\| ([A-Za-z][^|]*?) \| ([\d,]+) \|(.*)$', re.M)


def table_after(text: str, heading: str) -> dict[str, tuple[str, ...]]:
    """{method's first word: (trainable, val top-1, test top-1)} of the first table after ``heading``."""
    section = text.split(heading, 1)[1]
    table = section[section.index('\n|'):].split('\n\n', 1)[0]
    rows = {}
    for name, trainable, rest in ROW.findall(table):
        cells = [c.strip() for c in rest.strip(' |').split('|')]
        val, test = (cells[1], cells[2]) if len(cells) > 2 else (cells[0], cells[1])  # README has '% of full' first
        rows[name.split()[0].lower()] = (trainable, val, test)
    return rows


def test_readme_and_demo_readme_show_the_same_quick_start():
    readme = table_after((ROOT / 'README.md').read_text(), '## Quick start')
    demo = table_after((ROOT / 'petl_vision' / 'demo' / 'README.md').read_text(), '## Results')
    assert len(readme) == 8 and set(readme) == {'linear', 'vpt-deep', 'bitfit', 'adapter', 'adaptformer', 'ssf',
                                                'lora', 'full'}
    assert demo == readme
