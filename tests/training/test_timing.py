from keras_superattn.training import timing


def test_calls_take_turns_after_their_warmup():
    order = []
    calls = {name: (lambda name=name: order.append(name)) for name in ("a", "b")}
    samples = timing.interleaved_samples(calls, rounds=3, warmup=2)
    assert order == ["a", "a", "b", "b"] + ["a", "b"] * 3
    assert {name: len(s) for name, s in samples.items()} == {"a": 3, "b": 3}
    assert all(s >= 0 for seconds in samples.values() for s in seconds)


def test_median_of_each_call(monkeypatch):
    # Start and stop readings of three rounds: 5, 1 and 2 seconds.
    readings = iter([0, 5, 10, 11, 20, 22])
    monkeypatch.setattr(timing.time, "perf_counter", lambda: next(readings))
    assert timing.interleaved_median_seconds({"a": lambda: None}, rounds=3, warmup=0) == {"a": 2}
