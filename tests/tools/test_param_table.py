"""tools/analysis/param_table.py: the published counts, from presets on a timm name and from configs."""
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def table(*args: str) -> list[dict]:
    out = subprocess.run([sys.executable, str(ROOT / 'tools' / 'analysis' / 'param_table.py'), *args, '--json'],
                         capture_output=True, text=True, check=True, cwd=ROOT).stdout
    return json.loads(out)


def test_presets_on_vit_b16_match_the_papers():
    rows = {r['preset']: r for r in table('--model', 'vit_base_patch16_224', '--presets', 'lora', 'adapter',
                                          'vpt_deep')}
    assert {k: r['trainable'] for k, r in rows.items()} == {'lora': 294_912, 'adapter': 156_768,
                                                             'vpt_deep': 92_160}
    assert rows['lora']['head'] == 768 * 100 + 100


def test_configs_report_heads_and_decoders_apart():
    rows = {r['config']: r for r in table(
        '--config', 'configs/dapt/dapt_point-mae-vit-s_300e_scanobjectnn-objbg.py',
        'configs/polyhistor/polyhistor_swin-t_300e_pascal-context.py')}
    dapt = rows['dapt_point-mae-vit-s_300e_scanobjectnn-objbg']
    assert dapt['trainable_with_head'] == 1_087_771  # the official DAPT count on ScanObjectNN (15 classes)
    assert dapt['head'] == 365_839
    poly = rows['polyhistor_swin-t_300e_pascal-context']
    assert poly['head'] == 1_946_624  # four task decoders (MTLoRA's layout), counted apart from the backbone side
    assert poly['trainable'] + poly['head'] == poly['trainable_with_head']
