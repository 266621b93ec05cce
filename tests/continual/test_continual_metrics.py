"""The continual metrics on a hand-computed accuracy matrix: each formula gives its own number, as the papers'
code does (CODA-Prompt's calc_forgetting ported as the oracle of the consecutive-drop form)."""
import math
from pathlib import Path

import numpy as np
import pytest

from petl_vision.continual import metrics as m

NAN = float('nan')
# R[i][j]: accuracy on task j after training task i; task 0 improves after task 1, then both drop
R = [[0.8, 0.3, NAN],
     [0.9, 0.8, 0.4],
     [0.6, 0.5, 0.7]]


def coda_calc_forgetting(y: np.ndarray) -> float:
    """GT-RIPL/CODA-Prompt utils/calc_forgetting.py for one trial."""
    fgt, index = 0.0, y.shape[1]
    for t in range(1, index):
        for i in range(t):
            fgt += (y[t - 1, i] - y[t, i]) * (1 / t)
    return fgt / (len(y) - 1)


def test_hand_computed_values():
    assert m.final_average_accuracy(R) == pytest.approx((0.6 + 0.5 + 0.7) / 3)  # 0.6
    assert list(m.stage_accuracies(R)) == pytest.approx([0.8, 0.85, 0.6])
    assert m.average_incremental_accuracy(R) == pytest.approx(0.75)
    # sample-weighted: task 2 has twice the test images -> A_2 = (0.6 + 0.5 + 2 * 0.7) / 4
    assert m.average_incremental_accuracy(R, sizes=[1, 1, 2]) == pytest.approx((0.8 + 0.85 + 0.625) / 3)
    assert m.max_forgetting(R) == pytest.approx(0.3)  # (0.9 - 0.6 + 0.8 - 0.5) / 2: the max, not the diagonal
    assert m.consecutive_forgetting(R) == pytest.approx(0.1)  # ((0.8 - 0.9) / 1 + (0.3 + 0.3) / 2) / 2
    assert m.backward_transfer(R) == pytest.approx(-0.25)  # (0.6 - 0.8 + 0.5 - 0.8) / 2
    assert m.forward_transfer(R, baseline=[0.1, 0.2, 0.1]) == pytest.approx(0.2)  # (0.3 - 0.2 + 0.4 - 0.1) / 2


def test_consecutive_forgetting_matches_coda_prompt_code():
    rng = np.random.default_rng(0)
    y = np.tril(rng.uniform(size=(6, 6)))
    assert m.consecutive_forgetting(y) == pytest.approx(coda_calc_forgetting(y))
    assert m.max_forgetting(y) != pytest.approx(m.consecutive_forgetting(y))


def test_summary_keys_and_single_task():
    s = m.summary(R)
    assert set(s) == {'final_average_accuracy', 'average_incremental_accuracy', 'max_forgetting',
                      'consecutive_forgetting', 'backward_transfer'}
    assert m.summary([[0.5]]) == {'final_average_accuracy': 0.5, 'average_incremental_accuracy': 0.5}


def test_bad_matrices_are_refused():
    with pytest.raises(ValueError, match='must be square'):
        m.final_average_accuracy([[0.1, 0.2]])
    with pytest.raises(ValueError, match='NaN on or below its diagonal'):
        m.final_average_accuracy([[0.1, NAN], [NAN, 0.2]])
    with pytest.raises(ValueError, match='at least two tasks'):
        m.max_forgetting([[0.5]])
    with pytest.raises(ValueError, match='evaluate each next task'):
        m.forward_transfer([[0.5, NAN], [0.4, 0.6]], baseline=[0.1, 0.1])
    with pytest.raises(ValueError, match='positive test-set size'):
        m.average_incremental_accuracy(R, sizes=[1, 0, 1])


def test_heat_map_is_written(tmp_path):
    path = m.plot_accuracy_matrix(np.array(R) * 100, str(tmp_path / 'R.png'), task_names=['a', 'b', 'c'])
    data = Path(path).read_bytes()
    assert data[:8] == b'\x89PNG\r\n\x1a\n' and len(data) > 2000
    assert not math.isnan(m.final_average_accuracy(np.array(R) * 100))
