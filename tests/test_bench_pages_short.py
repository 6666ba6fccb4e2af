"""The owner-pages-under-load benchmark's short form (bench/bench_pages_under_load.py): a few calls streaming
while owner tabs poll the live list and the overview. Not a speed test (the figures are in bench/README.md):
it holds what must be true at any load — no frame lost, no call failed, every page answered, and the live
list showing the calls in progress — and keeps the benchmark working."""

from __future__ import annotations

from bench.bench_pages_under_load import parse_args, run


def test_pages_polled_during_calls_lose_no_frame_and_show_the_live_calls() -> None:
    args = parse_args(["--history", "2000", "--calls", "3", "--seconds", "3", "--pages", "2"])
    calls_only, with_pages = run(args)
    for phase in (calls_only, with_pages):
        assert [c.error for c in phase.result.calls if c.error] == []
        assert phase.result.lost_up == 0 and phase.result.lost_down == 0, phase.name
    assert with_pages.pages is not None and with_pages.pages.errors == 0
    assert with_pages.pages.live_rows_seen == 3
    assert len(with_pages.pages.times["live list"]) >= 2 * 2 and with_pages.pages.times["overview"]
