"""Transactional outbox, relay and brokers."""
