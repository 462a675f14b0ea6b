"""Prometheus metrics for one server process, at GET /metrics.

Everything is read at scrape time from counters the hub, the runtime and the service keep
anyway (a few integer additions per event, none per reader), so serving readers costs the
same with or without a scraper. No label carries a blog slug or an address: the number of
series stays fixed however many blogs and readers there are.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response

if TYPE_CHECKING:
    from pushhub.runtime import Runtime

TRANSPORTS = ("websocket", "sse")


class RuntimeCollector(Collector):
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    def collect(self) -> Iterator[Metric]:
        rt, hub = self.rt, self.rt.hub
        kinds = Counter(r.kind for ch in hub.channels.values() for r in ch.readers)
        readers = GaugeMetricFamily(
            "pushhub_readers", "Readers connected to this process", labels=["transport"]
        )
        for kind in TRANSPORTS:
            readers.add_metric([kind], kinds[kind])
        yield readers
        yield GaugeMetricFamily(
            "pushhub_blogs_live", "Blogs this process holds a live copy of", value=len(hub.channels)
        )
        yield GaugeMetricFamily(
            "pushhub_draining", "1 while the process drains for shutdown", value=int(rt.draining)
        )
        counters = [
            ("pushhub_events", "Events fanned out to readers here", hub.events_fanned_out),
            ("pushhub_deliveries", "Frames handed to readers by fan-outs", hub.deliveries),
            ("pushhub_readers_kicked_slow", "Readers cut off for falling behind", hub.kicked_slow),
            ("pushhub_subscription_stalls", "Blog subscriptions found stalled", hub.stalls),
            ("pushhub_store_divergences", "Store found without acked events", hub.divergences),
            ("pushhub_writes", "Writes the store accepted through this process", rt.service.writes),
        ]  # fmt: skip
        for name, doc, value in counters:
            yield CounterMetricFamily(name, doc, value=value)
        refused = CounterMetricFamily(
            "pushhub_readers_refused", "Reader connections refused, by reason", labels=["reason"]
        )
        for reason, count in sorted(rt.refused.items()):
            refused.add_metric([reason], count)
        yield refused
        errors = CounterMetricFamily(
            "pushhub_http_errors", "API answers with an error, by its code", labels=["error"]
        )
        for code, count in sorted(rt.errors.items()):
            errors.add_metric([code], count)
        yield errors


def registry_for(rt: Runtime) -> CollectorRegistry:
    """A registry of this process: pushhub's own metrics and the process's CPU, memory and fds."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(RuntimeCollector(rt))
    ProcessCollector(registry=registry)
    return registry


async def metrics(request: Request) -> Response:
    registry: CollectorRegistry = request.app.state.metrics
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
