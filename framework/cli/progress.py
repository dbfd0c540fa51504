"""A one-line progress bar on stderr, drawn only when stderr is a terminal."""

import sys
import time


class ProgressBar:
    """``label [#####.....] 340/600`` redrawn in place at most 10 times a second.

    Logs and pipes get nothing: the caller prints a summary line per unit of
    work, which reads better there than hundreds of carriage returns.
    """

    def __init__(self, stream=None):
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty()
        self.last = 0.0

    def __call__(self, label, done, total):
        if not self.enabled:
            return
        now = time.monotonic()
        if done < total and now - self.last < 0.1:
            return
        self.last = now
        width = 30
        filled = width * done // total
        self.stream.write(f"\r{label} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
        if done == total:
            self.stream.write("\r" + " " * (width + len(label) + 24) + "\r")
        self.stream.flush()

    def clear(self):
        """Erase a half-drawn bar, e.g. before an interruption message."""
        if self.enabled and self.last:
            self.stream.write("\r" + " " * 80 + "\r")
            self.stream.flush()
