"""The README's test command is the one `.ci/run` runs, and with the project's pytest settings it ends with the
"N passed" line (pyproject's addopts once held -q, which made the command's -q a -qq that prints no count)."""
import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def readme_test_command() -> str:
    section = ROOT.joinpath('README.md').read_text().split('## Tests', 1)[1]
    return re.search(r'```bash\n(python -m pytest[^\n]*)\n```', section)[1]


def test_ci_runs_the_readme_command():
    ci = [line.split('#')[0].strip() for line in ROOT.joinpath('.ci', 'run').read_text().splitlines()]
    assert readme_test_command() == 'python -m pytest tests -q'
    assert readme_test_command() in ci


def test_the_command_prints_the_count(tmp_path):
    (tmp_path / 'test_two.py').write_text('def test_a():\n    pass\n\n\ndef test_b():\n    pass\n')
    flags = readme_test_command().split()[4:]  # the command's options, on a two-test file instead of tests/
    done = subprocess.run([sys.executable, '-m', 'pytest', str(tmp_path / 'test_two.py'), *flags,
                           '-c', str(ROOT / 'pyproject.toml')], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r'^2 passed in [\d.]+s$', done.stdout, re.M), done.stdout


def test_no_cache_in_the_shared_tree():
    addopts = tomllib.loads(ROOT.joinpath('pyproject.toml').read_text())['tool']['pytest']['ini_options']['addopts']
    assert '-p no:cacheprovider' in addopts and '-q' not in addopts.split()
