"""bench/slow_clients_bench.py end to end at toy size: a real box with small caps and a short
header deadline, the attacker process past the caps, and the report's figures."""

from __future__ import annotations

from bench import slow_clients_bench


def test_slow_clients_bench_runs_and_sees_the_caps_at_work() -> None:
    args = slow_clients_bench.arguments().parse_args(
        [
            "--duration", "1", "--rate", "20", "--clients", "2",
            "--idle", "4", "--half", "4", "--body", "4", "--sse", "3", "--no-reconnect",
            "--setting", "SMCP_BOX_SERVER_MAX_CONNECTIONS_PER_ADDRESS=6",
            "--setting", "SMCP_BOX_SERVER_MAX_SSE_STREAMS_PER_ADDRESS=1",
            "--setting", "SMCP_BOX_SERVER_HEADER_TIMEOUT_S=0.5",
        ]
    )  # fmt: skip
    result = slow_clients_bench.run(args)
    for phase in ("alone", "under_attack"):
        assert result[phase]["requests"] > 0, result
        assert result[phase]["errors"] == 0, result
    assert result["p99_ratio"] > 0
    drops = result["box_dropped"]
    # 12 slow connections (and 3 streams' connections) against a cap of 6.
    assert drops["connections_per_address"] >= 6, drops
    # However the connections fell, no more than one stream was let in.
    assert result["attacker_ready"]["sse"]["opened"] <= 1, result["attacker_ready"]
    # Those let in were closed at the 0.5 s header deadline (part of a head, or nothing).
    assert drops["header_timeout"] + drops["idle_timeout"] >= 1, drops
    assert result["box_fds"]["after"] <= result["box_fds"]["before"] + 8, result["box_fds"]
