"""Result tables and plots shared by the tools (suite results, benchmarks)."""
from .results import SuiteRow, plot_accuracy_vs_params, write_results

__all__ = ['SuiteRow', 'plot_accuracy_vs_params', 'write_results']
