"""Prometheus metrics in a registry owned by the app (no global registry)."""
from __future__ import annotations

from typing import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 2, 5, 10, 30)
JOB_BUCKETS = (0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600)


class Metrics:
    def __init__(self, queue_depth: Callable[[], float]):
        self.registry = CollectorRegistry()
        self.requests = Counter("medvision_http_requests", "HTTP requests by route",
                                ["method", "route", "status"], registry=self.registry)
        self.latency = Histogram("medvision_http_request_seconds", "HTTP latency by route",
                                 ["method", "route"], buckets=LATENCY_BUCKETS,
                                 registry=self.registry)
        self.jobs = Histogram("medvision_job_seconds", "job durations by outcome", ["outcome"],
                              buckets=JOB_BUCKETS, registry=self.registry)
        self.inference = Histogram("medvision_inference_seconds",
                                   "inference time per model (with explanations)", ["model"],
                                   buckets=LATENCY_BUCKETS, registry=self.registry)
        self.queue = Gauge("medvision_queue_depth", "jobs queued or running",
                           registry=self.registry)
        self.queue.set_function(queue_depth)
