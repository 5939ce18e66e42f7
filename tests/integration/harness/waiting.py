# Polling helper of the integration tests and benchmarks (no pytest dependency).
import time


def wait_for(predicate, timeout=5.0, interval=0.05):
    """Calls predicate until it returns a true value or `timeout` seconds passed; returns
    its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)
