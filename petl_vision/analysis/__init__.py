"""Result tables and plots shared by the tools (suite results, benchmarks)."""
from .dense_results import DenseRow, add_delta_m, single_task_baselines, write_dense_results
from .multitask_results import MultiTaskRow, write_multitask_results
from .results import SuiteRow, plot_accuracy_vs_params, write_results

__all__ = ['DenseRow', 'MultiTaskRow', 'SuiteRow', 'write_multitask_results', 'add_delta_m',
           'plot_accuracy_vs_params', 'single_task_baselines', 'write_dense_results', 'write_results']
