"""Prometheus metrics of one node, in a registry of its own (tests run many nodes
in one process, and the default registry would mix them up)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector


class ByLabel:
    """A labelled counter whose children are looked up once: `labels()` costs a lock
    and a tuple hash, paid on every frame otherwise."""

    def __init__(self, counter: Counter) -> None:
        self._counter = counter
        self._children: dict[str, Counter] = {}

    def inc(self, label: str) -> None:
        child = self._children.get(label)
        if child is None:
            child = self._children[label] = self._counter.labels(label)
        child.inc()


class CountedElsewhere(Collector):
    """A counter whose count another object keeps (read at scrape time)."""

    def __init__(self, name: str, documentation: str, read: Callable[[], int]) -> None:
        self._name, self._documentation, self._read = name, documentation, read

    def collect(self) -> Iterator[CounterMetricFamily]:
        yield CounterMetricFamily(self._name, self._documentation, value=self._read())


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.connections = Gauge("pea_connections", "Open WebSocket connections.", registry=r)
        self.peers = Gauge("pea_peers", "Peers joined to a room on this node.", registry=r)
        self.rooms = Gauge("pea_rooms", "Rooms with at least one peer on this node.", registry=r)
        self.frames_in = ByLabel(
            Counter("pea_frames_in", "Frames received from clients, by type.", ["type"], registry=r)
        )
        self.frames_out = ByLabel(
            Counter("pea_frames_out", "Frames sent to clients, by type.", ["type"], registry=r)
        )
        self.errors = ByLabel(
            Counter("pea_errors", "Error frames sent, by code.", ["code"], registry=r)
        )
        self.relay_latency = Histogram(
            "pea_relay_latency_seconds",
            "Time from a signal's publish on one node to its delivery on the receiving node.",
            buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5),
            registry=r,
        )
        self.bus_reconnects = Gauge(
            "pea_bus_reconnects", "Times the bus reconnected after losing Redis.", registry=r
        )
        self.bus_healthy = Gauge("pea_bus_healthy", "1 while the bus is connected.", registry=r)
        self.draining = Gauge("pea_draining", "1 while the node is draining.", registry=r)
        self.task_failures = Counter(
            "pea_task_failures",
            "Unexpected failures of the node's long-running tasks (each is restarted), by task.",
            ["task"],
            registry=r,
        )
        self.peer_connections = Counter(
            "pea_peer_connections",
            "Outcomes of direct connections, as clients report them: result (connected, "
            "failed), the candidate types of the pair that connected or, on failure, the "
            "best gathered on each side (relay > srflx > prflx > host > none), and reason.",
            ["result", "local", "remote", "reason"],
            registry=r,
        )
        self.bus_publishes_dropped: CountedElsewhere | None = None
        self.dropped_slow = Counter(
            "pea_slow_consumers_dropped", "Connections dropped for not reading.", registry=r
        )

    def count_bus_drops(self, read: Callable[[], int]) -> None:
        """`pea_bus_publishes_dropped_total`: messages the bus accepted but lost."""
        if self.bus_publishes_dropped is None:
            self.bus_publishes_dropped = CountedElsewhere(
                "pea_bus_publishes_dropped",
                "Messages accepted for the bus but lost (the publish to Redis failed).",
                read,
            )
            self.registry.register(self.bus_publishes_dropped)
