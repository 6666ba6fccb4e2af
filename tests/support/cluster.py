"""Two instances of the real service on one database, as a load balancer would see them.

Both share one environment (same `DATA_DIR`, `DATABASE_URL`, secrets) and one `PUBLIC_BASE_URL`, the origin
Twilio signs webhooks for: instance A's. A test sends a webhook to A and its media stream to B (or the other
way) to stand in for a balancer that put them on different instances.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

from tests.support.server import RunningServer, free_port, run_server


@dataclass
class Cluster:
    a: RunningServer
    b: RunningServer
    env: dict[str, str]

    @property
    def servers(self) -> tuple[RunningServer, ...]:
        return (self.a,) if self.a is self.b else (self.a, self.b)

    def logs(self) -> str:
        return "\n".join(server.log() for server in self.servers)


@contextmanager
def run_cluster(env: Mapping[str, str], *, instances: int = 2, workers: int = 1) -> Iterator[Cluster]:
    """`instances` (1 or 2) servers of `workers` each on the database `env` names; with one, `a` is `b`."""
    port_a = free_port()
    shared = {**env, "PUBLIC_BASE_URL": env.get("PUBLIC_BASE_URL", f"http://127.0.0.1:{port_a}")}
    with ExitStack() as stack:
        a = stack.enter_context(run_server(shared, port=port_a, workers=workers))
        b = a if instances == 1 else stack.enter_context(run_server(shared, workers=workers))
        yield Cluster(a, b, dict(a.env))
