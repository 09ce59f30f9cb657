"""Plain progress lines when stderr is not a terminal (data_pipeline.progress)."""
import io
import time

from data_pipeline.progress import progress


def test_the_interval_from_the_environment_wins_over_the_callers_terminal_interval(monkeypatch):
    """A fast CI machine finished a loop before the caller's 1 s redraw interval: no line at all."""
    monkeypatch.setenv("KBLM_PROGRESS_INTERVAL", "0.001")
    stream = io.StringIO()
    for _ in progress(range(50), desc="counting", mininterval=1, file=stream):
        time.sleep(0.002)
    lines = stream.getvalue().splitlines()
    assert len(lines) >= 2 and all(line.startswith("counting") for line in lines), lines
    assert lines[-1].startswith("counting: 100%|") and "50/50" in lines[-1]
    assert "\r" not in stream.getvalue()


def test_a_short_loop_stays_silent(monkeypatch):
    monkeypatch.delenv("KBLM_PROGRESS_INTERVAL", raising=False)
    stream = io.StringIO()
    for _ in progress(range(1000), desc="counting", file=stream):
        pass
    assert stream.getvalue() == ""
