"""SQL tables (SQLAlchemy 2.0) and API schemas (Pydantic v2) for the ported RPS resources."""

from rps_port.domain.base import Base
from rps_port.domain.customers import Customer, CustomerAddress
from rps_port.domain.orders import ORDER_TRANSITIONS, Order, OrderItem
from rps_port.domain.transactions import Transaction

__all__ = ["Base", "Customer", "CustomerAddress", "Order", "OrderItem", "Transaction", "ORDER_TRANSITIONS"]
