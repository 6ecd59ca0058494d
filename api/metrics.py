"""Prometheus metrics (``/metrics``, text format), in the app's own registry so two apps never share one."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    def __init__(self):
        self.registry = CollectorRegistry()
        self.requests = Counter("medkg_http_requests_total", "HTTP requests by route template, method and status",
                                ["route", "method", "status"], registry=self.registry)
        self.latency = Histogram("medkg_http_request_duration_seconds", "request latency by route template",
                                 ["route", "method"], registry=self.registry,
                                 buckets=(.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60))
        self.jobs = Counter("medkg_jobs_total", "bill jobs by final state", ["state"], registry=self.registry)
        self.jobs_running = Gauge("medkg_jobs_running", "bill jobs queued or running", registry=self.registry)
        self.graph_errors = Counter("medkg_graph_errors_total", "requests answered 503: graph unreachable",
                                    registry=self.registry)
