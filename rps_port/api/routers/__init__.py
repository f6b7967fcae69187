"""One router module per resource; `rps_port.api.router.build_router` combines them."""
