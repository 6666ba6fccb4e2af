"""The load benchmark's short form (bench/bench_load.py): a few calls of two-way audio through the real
service and through the bare forwarder. Not a speed test (those are ratios in bench/README.md): it holds
what must be true at any load — no frame lost either way, every model session closed within 3 s of the
caller's `stop`, no call failed — and keeps the benchmark itself working."""

from __future__ import annotations

from bench.bench_load import parse_args, run


def test_short_load_run_loses_nothing_and_leaves_no_session_open() -> None:
    args = parse_args(["--calls", "3", "--seconds", "3"])
    results = {r.target: r for r in run(args)}
    assert set(results) == {"floor", "service"}
    for result in results.values():
        assert [c.error for c in result.calls if c.error] == []
        assert result.lost_up == 0 and result.lost_down == 0, result.target
        assert result.open_after == 0, result.target
        assert len(result.greeting_ms) == 3 and len(result.up_ms) >= 3 * 140
