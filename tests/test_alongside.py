"""Work in a second process: its value and warnings come back; a failing caller does not wait."""

import functools
import time
import warnings

import pytest

from nsm_sim.alongside import alongside


def test_the_value_and_the_warnings_come_back():
    work = functools.partial(warnings.warn, "raised in the second process")
    with alongside(work) as result:
        with pytest.warns(UserWarning, match="raised in the second process"):
            assert result() is None


def test_in_this_process_when_asked():
    with alongside(functools.partial(max, 3, 7), second_process=False) as result:
        assert result() == 7


def test_a_failing_caller_does_not_wait_for_its_second_process():
    start = time.perf_counter()
    with pytest.raises(RuntimeError, match="the caller failed"):
        with alongside(functools.partial(time.sleep, 120)):
            raise RuntimeError("the caller failed")
    assert time.perf_counter() - start < 60  # the work alone would take 120 s
