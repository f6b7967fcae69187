"""Usage and cost: the ledger, `record_usage()`, the pricing catalog, SMS segments, reports."""

from rps_port.usage.ledger import record_usage
from rps_port.usage.segments import sms_segments

__all__ = ["record_usage", "sms_segments"]
