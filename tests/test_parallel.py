"""lesionbench.parallel.map_cases: the serial loop's results and errors, on threads."""

import threading
import time

import pytest

from lesionbench.parallel import map_cases


def test_results_keep_input_order_and_equal_the_serial_loop():
    def slow_square(x):
        time.sleep(0.01 * (5 - x))  # later items finish first
        return x * x

    assert map_cases(slow_square, range(5), threads=2) == [0, 1, 4, 9, 16]
    assert map_cases(slow_square, range(5), threads=1) == [0, 1, 4, 9, 16]
    assert map_cases(slow_square, [], threads=2) == []


def test_work_runs_on_the_requested_number_of_threads():
    names = set()

    def record(x):
        names.add(threading.current_thread().name)
        time.sleep(0.02)
        return x

    map_cases(record, range(6), threads=2)
    assert len(names) == 2
    names.clear()
    map_cases(record, range(6), threads=1)
    assert names == {threading.current_thread().name}  # serial: the caller's thread


def test_the_first_failing_item_in_input_order_is_raised():
    def check(x):
        if x in (1, 3):
            time.sleep(0.05 if x == 1 else 0.0)  # item 3 fails first in time
            raise ValueError(f"case {x} is bad")
        return x

    with pytest.raises(ValueError, match="case 1 is bad"):
        map_cases(check, range(5), threads=2)
