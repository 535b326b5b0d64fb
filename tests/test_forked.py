"""jscgc.forked: forked jobs return what the same jobs return in this process, in order, with each
child's torch thread count set to its share; a failing job's exception reaches the caller."""
import pytest
import torch

from jscgc.forked import forked_map, threads_per_worker


def test_threads_are_shared_and_never_zero():
    assert threads_per_worker(2, 2) == 1
    assert threads_per_worker(2, 8) == 4
    assert threads_per_worker(3, 2) == 1
    assert threads_per_worker(1, 6) == 6
    with pytest.raises(ValueError, match="workers 0"):
        threads_per_worker(0, 2)


def test_forked_results_equal_in_process_results_in_order():
    weights = torch.randn(64, 64, generator=torch.Generator().manual_seed(0))     # shared by the fork, not pickled

    def job(k):
        x = torch.randn(8, 64, generator=torch.Generator().manual_seed(k))
        return k, torch.get_num_threads(), (x @ weights).tanh().sum(0)

    here = [job(k) for k in range(5)]
    there = forked_map(job, range(5), workers=2)
    assert [k for k, _, _ in there] == list(range(5))
    assert {n for _, n, _ in there} == {threads_per_worker(2)}
    for (_, _, a), (_, _, b) in zip(here, there):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert forked_map(job, [3], workers=2)[0][1] == torch.get_num_threads()      # one job: in this process


def test_an_exception_in_a_job_reaches_the_caller():
    def job(k):
        if k == 2:
            raise ValueError("job 2 failed")
        return k

    with pytest.raises(ValueError, match="job 2 failed"):
        forked_map(job, range(4), workers=2)
