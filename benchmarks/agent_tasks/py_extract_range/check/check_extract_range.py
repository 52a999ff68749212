import inspect, checks, grades, stats
import pytest


def test_extracted():
    assert checks.is_valid_score(0) and checks.is_valid_score(100) and not checks.is_valid_score(101)
    assert not checks.is_valid_score(-1)
    assert 'is_valid_score' in inspect.getsource(grades) and 'is_valid_score' in inspect.getsource(stats)
    assert grades.grade(70) == 'pass' and stats.average([50, 100]) == 75
    with pytest.raises(ValueError):
        stats.average([5, 500])
    with pytest.raises(ValueError):
        grades.grade(-3)
