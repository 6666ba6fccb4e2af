"""The owner-pages-under-load benchmark's short form (bench/bench_pages_under_load.py): a few calls streaming
while signed-in owner tabs poll the live list and load the overview, calls list and billing pages. Not a speed
test (the figures are in bench/README.md): it holds what must be true at any load — no frame lost, no call
failed, every page answered 200, the live list showing the calls in progress, the report complete — and keeps
the benchmark working."""

from __future__ import annotations

import math

from bench.bench_pages_under_load import LABELS, parse_args, report, run


def test_pages_loaded_during_calls_lose_no_frame_and_show_the_live_calls() -> None:
    args = parse_args(["--history", "1000", "--calls", "3", "--seconds", "3", "--pages", "2", "--warmup", "0"])
    outcome = run(args)
    calls_only, with_pages = outcome.phases
    for phase in (calls_only, with_pages):
        assert [c.error for c in phase.result.calls if c.error] == [], phase.name
        assert phase.result.lost_up == 0 and phase.result.lost_down == 0, phase.name
        assert len(phase.result.up_ms) >= 3 * 100 and len(phase.result.down_ms) >= 3 * 100, phase.name
    pages = with_pages.pages
    assert pages is not None and set(pages.statuses) == {200}, pages.statuses
    assert pages.live_rows_seen == 3
    assert all(pages.times[label] for label in LABELS), {k: len(v) for k, v in pages.times.items()}
    # The pages' statements were profiled through the app's own queries, each with its plan.
    assert len(outcome.queries) >= 15 and all(plan for _sql, _ms, plan in outcome.queries)
    text = report(outcome, args)
    for needle in ("(a) calls only", "(b) calls + owner pages", "ratio (b) / (a)", *LABELS):
        assert needle in text, needle
    assert "nan" not in text.split("The pages' statements")[0]
    assert not any(math.isnan(v) for v in pages.times["billing"])
