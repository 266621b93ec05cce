"""The demo backbones are timm models right after ``import petl_vision``, whichever of petl_vision and timm is
imported first (fresh interpreters: the registration happens at import time)."""
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHECK = """
import timm.data
m = timm.create_model('vit_digits_demo', pretrained=True, num_classes=10)
s = timm.create_model('swin_digits_demo')
assert sum(p.numel() for p in m.parameters()) == 691_488 + 970, 'the demo ViT with its 10-class head'
assert timm.data.resolve_data_config({}, model=m)['input_size'] == (3, 32, 32)
print('ok', type(m).__name__, type(s).__name__)
"""


def _run(code: str) -> str:
    done = subprocess.run([sys.executable, '-c', code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.mark.parametrize('imports', ['import petl_vision\nimport timm', 'import timm\nimport petl_vision'])
def test_demo_models_after_import_petl_vision(imports):
    assert _run(imports + CHECK).split() == ['ok', 'VisionTransformer', 'SwinTransformer']


def test_the_hook_registers_when_timm_is_imported_later():
    """The path where timm is not loaded yet: the hook waits for it (and timm's resources still load)."""
    code = f"""
import importlib.util, sys
spec = importlib.util.spec_from_file_location('hook', {str(ROOT / 'petl_vision' / 'timm_registration.py')!r})
hook = importlib.util.module_from_spec(spec)
spec.loader.exec_module(hook)
hook.register_demo_models_with_timm()
hook.register_demo_models_with_timm()  # twice: still one hook
assert 'timm' not in sys.modules and sum(isinstance(f, hook._TimmImportHook) for f in sys.meta_path) == 1
import timm
assert not any(isinstance(f, hook._TimmImportHook) for f in sys.meta_path)
from timm.data import ImageNetInfo
assert ImageNetInfo().index_to_description(0)  # a file read through timm's (wrapped) loader
""" + CHECK
    assert _run(code).split() == ['ok', 'VisionTransformer', 'SwinTransformer']
