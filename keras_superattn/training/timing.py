"""Timing that compares: candidates in one interleaved loop, reported by median.

The machines this runs on are shared and noisy, so a time means something only
next to another taken in the same loop. Round by round every call runs once,
so load that drifts during the loop hits all of them alike.
"""

import statistics
import time


def interleaved_samples(calls, rounds, warmup=1):
    """Seconds taken by each `{name: call}` in each of `rounds` rounds.

    Each call must finish its work before returning (e.g. fetch its result
    to NumPy), or the time of asynchronous backends is not measured.
    Returns `{name: [seconds, ...]}`.
    """
    for call in calls.values():
        for _ in range(warmup):
            call()
    samples = {name: [] for name in calls}
    for _ in range(rounds):
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            samples[name].append(time.perf_counter() - start)
    return samples


def interleaved_median_seconds(calls, rounds, warmup=1):
    """Median seconds of each `{name: call}`, timed by `interleaved_samples`."""
    samples = interleaved_samples(calls, rounds, warmup)
    return {name: statistics.median(seconds) for name, seconds in samples.items()}
