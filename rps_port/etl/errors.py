"""Errors of the ETL: a document that cannot be mapped, and a mapping file that is wrong."""

from __future__ import annotations


class ConversionError(ValueError):
    """A converter refused a value. `reason` is a stable code (e.g. `non_numeric_amount`)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class RejectError(Exception):
    """A legacy document that cannot be loaded as it is.

    `record_id` names the document (its `_id` as 24 hex, or a stand-in when it has none),
    `field_path` the field that failed (dotted, array indexes as `items.2.unitPrice`),
    `reason` a stable code counted in reconciliation (e.g. `totals_mismatch`). Messages never
    carry field values that could be personal data or secrets.
    """

    def __init__(self, record_id: str, field_path: str, reason: str, message: str = "") -> None:
        self.record_id = record_id
        self.field_path = field_path
        self.reason = reason
        self.message = message or reason
        super().__init__(f"{record_id}: {field_path}: {reason}: {self.message}")


class MappingError(ValueError):
    """The mapping file is invalid; the message names the file, the line and the field."""
