"""Measuring PETL methods against full fine-tuning and HF PEFT: step time, peak memory, latency, FLOPs.

``tools/benchmark.py`` is the command line; :func:`run_benchmark` does the work and returns a JSON-able record.
"""
from .fewshot import fewshot_table, time_fewshot
from .flops import count_flops, sdpa_flop_jit
from .methods import FULL, PEFT_LORA, build_method, merged_copy, set_grad_checkpointing
from .report import (add_ratios, machine_info, markdown_report, markdown_table, plot_ratios, ratio, ratio_table,
                     write_json)
from .runner import BenchConfig, run_benchmark
from .timing import Inference, TrainStep, median, round_robin

__all__ = ['FULL', 'PEFT_LORA', 'BenchConfig', 'Inference', 'TrainStep', 'add_ratios', 'build_method',
           'count_flops', 'fewshot_table', 'time_fewshot',
           'machine_info', 'markdown_report', 'markdown_table', 'median', 'merged_copy',
           'plot_ratios', 'ratio', 'ratio_table', 'round_robin', 'run_benchmark', 'sdpa_flop_jit',
           'set_grad_checkpointing', 'write_json']
