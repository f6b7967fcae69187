"""Amazon SQS (boto3): batches of 10 on publish; a FIFO queue (`.fifo`) keeps each aggregate's
order (MessageGroupId = aggregate id) and deduplicates on the event id for five minutes; a
standard queue is at least once and unordered. Unacknowledged messages return after the
visibility timeout; ApproximateReceiveCount is the delivery attempt."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3

from rps_port.outbox.brokers.base import Delivery, decode, encode


class SQSPublishError(RuntimeError):
    pass


class SQSBroker:
    def __init__(
        self,
        queue_url: str,
        *,
        endpoint_url: str | None = None,
        region: str = "us-east-1",
        visibility_timeout: int = 30,
        retry_delay: int = 1,
        max_in_flight: int = 4,
        client: Any = None,
    ) -> None:
        self.name = f"sqs:{queue_url.rsplit('/', 1)[-1]}"
        self.queue_url = queue_url
        self.fifo = queue_url.endswith(".fifo")
        self.visibility_timeout = visibility_timeout
        self.retry_delay = retry_delay
        self.max_in_flight = max_in_flight
        self.sqs = client or boto3.client("sqs", endpoint_url=endpoint_url, region_name=region)

    def _send(self, chunk: list[dict[str, Any]]) -> None:
        entries = []
        for i, message in enumerate(chunk):
            entry: dict[str, Any] = {"Id": str(i), "MessageBody": encode(message)}
            if self.fifo:
                entry["MessageGroupId"] = f"{message['aggregatetype']}:{message['aggregateid']}"
                entry["MessageDeduplicationId"] = message["id"]
            entries.append(entry)
        answer = self.sqs.send_message_batch(QueueUrl=self.queue_url, Entries=entries)
        failed = answer.get("Failed") or []
        if failed:
            codes = ", ".join(sorted({f.get("Code", "?") for f in failed}))
            raise SQSPublishError(f"SQS refused {len(failed)} of {len(entries)} messages ({codes})")

    def publish(self, messages: list[dict[str, Any]]) -> None:
        chunks = [messages[i : i + 10] for i in range(0, len(messages), 10)]
        if self.fifo or self.max_in_flight <= 1 or len(chunks) <= 1:
            # FIFO: batches go one after another, so an aggregate's order holds across batches.
            for chunk in chunks:
                self._send(chunk)
            return
        # A standard queue promises no order: send the batches concurrently.
        with ThreadPoolExecutor(max_workers=min(self.max_in_flight, len(chunks))) as pool:
            for future in [pool.submit(self._send, c) for c in chunks]:
                future.result()

    def receive(self, max_messages: int = 10, wait_seconds: float = 1.0) -> list[Delivery]:
        answer = self.sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=max(1, min(10, max_messages)),
            WaitTimeSeconds=max(0, min(20, int(wait_seconds))),
            VisibilityTimeout=self.visibility_timeout,
            MessageSystemAttributeNames=["ApproximateReceiveCount"],
        )
        out = []
        for m in answer.get("Messages", []):
            attempt = int(m.get("Attributes", {}).get("ApproximateReceiveCount", "1"))
            out.append(Delivery(decode(m["Body"]), attempt, m["ReceiptHandle"]))
        return out

    def ack(self, delivery: Delivery) -> None:
        self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=delivery.receipt)

    def nack(self, delivery: Delivery) -> None:
        self.sqs.change_message_visibility(
            QueueUrl=self.queue_url, ReceiptHandle=delivery.receipt, VisibilityTimeout=self.retry_delay
        )

    def pending(self) -> int:
        attrs = self.sqs.get_queue_attributes(
            QueueUrl=self.queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])

    def close(self) -> None:
        pass
