"""Work in a second process: its value and warnings come back; a failing caller does not wait."""

import functools
import time
import warnings

import pytest

from nsm_sim.alongside import SecondProcess, alongside


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


#: Run in the second process: whether it has imported nsm_sim.numeric (nothing else there does).
_IMPORTED = functools.partial(eval, "'nsm_sim.numeric' in __import__('sys').modules")


def test_a_second_process_started_ahead_has_imported_what_it_was_given():
    with alongside(_IMPORTED) as result:
        assert result() is False
    with SecondProcess(["nsm_sim.numeric"]) as second:
        for _ in range(2):  # it serves work after work until its block ends
            with alongside(_IMPORTED, second_process=second) as result:
                assert result() is True


def test_a_failing_caller_ends_a_second_process_started_ahead():
    start = time.perf_counter()
    with pytest.raises(RuntimeError, match="the caller failed"):
        with SecondProcess() as second:
            with alongside(functools.partial(time.sleep, 120), second_process=second):
                raise RuntimeError("the caller failed")
    assert time.perf_counter() - start < 60


def test_a_second_process_given_no_work_ends_without_finishing_its_imports(tmp_path, monkeypatch):
    (tmp_path / "slow_to_import.py").write_text("import time\n\ntime.sleep(120)\n")
    monkeypatch.syspath_prepend(str(tmp_path))  # the spawned process starts with this path
    start = time.perf_counter()
    with SecondProcess(["slow_to_import"]):
        pass
    assert time.perf_counter() - start < 60  # its import alone would take 120 s
