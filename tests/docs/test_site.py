"""The documentation site builds with `mkdocs build --strict` (a warning or a broken link fails), its home page is
the README, every page of docs/ is in the navigation and the API page has an entry for every name of
``petl_vision.__all__``."""
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import petl_vision

ROOT = Path(__file__).resolve().parents[2]
NEEDED = ('mkdocs', 'material', 'mkdocstrings', 'mkdocstrings_handlers.python')


def _build(config: Path, site: Path) -> subprocess.CompletedProcess:
    missing = [m for m in NEEDED if importlib.util.find_spec(m.split('.')[0]) is None
               or importlib.util.find_spec(m) is None]
    if missing:
        pytest.fail(f'the docs site needs {missing}: install the docs extra, pip install -e ".[docs]"')
    return subprocess.run([sys.executable, '-m', 'mkdocs', 'build', '--strict', '-f', str(config), '-d',
                           str(site)], cwd=config.parent, capture_output=True, text=True, timeout=300,
                          env={**os.environ, 'NO_MKDOCS_2_WARNING': '1'})


def _nav_pages(nav) -> list[str]:
    if isinstance(nav, str):
        return [nav]
    items = nav.values() if isinstance(nav, dict) else nav
    return [page for item in items for page in _nav_pages(item)]


@pytest.fixture(scope='module')
def site(tmp_path_factory) -> Path:
    site = tmp_path_factory.mktemp('site')
    result = _build(ROOT / 'mkdocs.yml', site)
    assert result.returncode == 0, f'mkdocs build --strict failed:\n{result.stdout}\n{result.stderr}'
    return site


def test_site_builds_with_the_readme_as_home_page(site):
    home = (site / 'index.html').read_text()
    first_heading = re.search(r'^## (.+)$', (ROOT / 'README.md').read_text(), re.M)[1]
    assert first_heading in home and 'Quick start' in home
    assert (site / 'methods' / 'bypass' / 'index.html').is_file()


def test_every_docs_page_is_in_the_nav():
    nav = set(_nav_pages(yaml.safe_load((ROOT / 'mkdocs.yml').read_text())['nav']))
    pages = {str(p.relative_to(ROOT / 'docs')) for p in (ROOT / 'docs').rglob('*.md')}
    assert not pages - nav, f'add these pages to the nav of mkdocs.yml: {sorted(pages - nav)}'
    assert not nav - pages, f'the nav of mkdocs.yml names pages that do not exist: {sorted(nav - pages)}'


def test_api_page_covers_petl_vision_all(site):
    anchors = set(re.findall(r'id="([\w.]+)"', (site / 'api' / 'index.html').read_text()))
    missing = [name for name in petl_vision.__all__ if f'petl_vision.{name}' not in anchors]
    assert not missing, f'docs/api.md renders no entry for {missing}'
    assert {'petl_vision.models.ImageClassifier', 'petl_vision.engine.TrainableOptimWrapperConstructor'} <= anchors


def test_strict_build_fails_on_a_broken_link(tmp_path):
    """The guard: --strict really turns a broken link into a failure (it does not with -q: mkdocs counts only the
    warnings it logs)."""
    (tmp_path / 'docs').mkdir()
    (tmp_path / 'docs' / 'index.md').write_text('# Home\n\nSee [the missing page](missing.md).\n')
    (tmp_path / 'mkdocs.yml').write_text('site_name: t\nnav:\n  - index.md\n')
    result = _build(tmp_path / 'mkdocs.yml', tmp_path / 'site')
    assert result.returncode != 0 and 'missing.md' in result.stdout + result.stderr
