"""Observability: one logging setup, one metrics registry, one tracing helper.

- `rps_port.observability.logging`: `configure_logging(settings, cli=False)`, `get_logger(name)`,
  `bind_context(**fields)` / `log_context(**fields)`.
- `rps_port.observability.metrics`: every Prometheus metric of the project, defined once.
- `rps_port.observability.tracing`: `configure_tracing(settings)`, `span(name, **attrs)`.
- `rps_port.observability.middleware`: `install_observability(app, settings)` for a FastAPI app.
"""
