"""Staged cutover: stages, cohorts, gates, state and audit, routing, reverse sync, rehearsal."""
