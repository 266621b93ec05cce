"""The suite's results table, CSV and accuracy-vs-parameters plot."""
import csv

from petl_vision.analysis.results import SuiteRow, markdown_table, write_results

ROWS = [SuiteRow('c/full.py', 'digits', 'full', 691_488, 970, 92.0, 90.25, 12.0),
        SuiteRow('c/linear.py', 'digits', 'linear', 0, 970, 80.0, 72.5, 3.0),
        SuiteRow('c/lora.py', 'digits', 'lora', 18_432, 970, 89.0, 86.5, 9.0),
        SuiteRow('c/x.py', 'other', 'lora', 18_432, 970, 50.0, None, 1.0)]


def test_table_compares_every_method_with_linear_probing_and_full_fine_tuning():
    lines = markdown_table(ROWS).splitlines()
    assert [line.split(' | ')[1] for line in lines[2:]] == ['linear', 'lora', 'full', 'lora']  # by dataset, size
    lora = lines[3].split(' | ')
    assert lora[2:] == ['18,432', '2.67', '970', '89.00', '86.50', '+14.00', '-3.75', '9 |']
    other = lines[5].split(' | ')
    assert other[3] == '-' and other[7:9] == ['-', '-']  # no linear/full run of that dataset to compare with


def test_write_results_writes_markdown_csv_and_plot(tmp_path):
    paths = write_results(ROWS, tmp_path / 'out')
    assert paths['markdown'].read_text().count('\n') == 6
    with paths['csv'].open() as f:
        rows = list(csv.DictReader(f))
    assert [r['method'] for r in rows] == ['full', 'linear', 'lora', 'lora'] and rows[2]['trainable'] == '18432'
    assert paths['plot'].read_bytes()[:8] == b'\x89PNG\r\n\x1a\n' and paths['plot'].stat().st_size > 10_000
