"""Mean ± std over suites run with other seeds (``tools/run_benchmark_suite.py ... --cfg-options randomness.seed=N``).

    python tools/analysis/seed_summary.py work_dirs/qd/dense_results.csv work_dirs/qd_seed1/dense_results.csv ...
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from petl_vision.analysis.seeds import summary_table  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('csv', nargs='+', help="results.csv / dense_results.csv of suites of the same configs")
    parser.add_argument('--out', help='also write the markdown table here')
    args = parser.parse_args()
    table = summary_table(args.csv)
    print(table)
    if args.out:
        Path(args.out).write_text(table + '\n')


if __name__ == '__main__':
    from petl_vision.cli import run_main  # user errors: one paragraph, exit 1; --debug: the traceback

    run_main(main)
