"""The same broker contract on the in-process queue, real Redis Streams and moto's SQS server."""

from __future__ import annotations

import time
import uuid

import pytest

from rps_port.outbox.brokers.inprocess import InProcessBroker
from rps_port.outbox.brokers.redis_streams import RedisStreamsBroker
from rps_port.outbox.brokers.sqs import SQSBroker


def msg(i: int, agg: str = "a1") -> dict:
    return {"id": str(uuid.uuid4()), "seq": i, "aggregatetype": "order", "aggregateid": agg, "type": "order.placed",
            "payload": {"n": i}, "org_id": "5f0000000000000000000001"}


@pytest.fixture(params=["inprocess", "redis", "sqs"])
def broker_pair(request):
    """(publisher, consumer A, consumer B, redelivery wait) on one queue."""
    if request.param == "inprocess":
        b = InProcessBroker(visibility_timeout=0.3)
        return b, b, b, 0.4
    if request.param == "redis":
        url = request.getfixturevalue("redis_url")
        stream = f"s-{uuid.uuid4().hex[:6]}"
        return (RedisStreamsBroker(url, stream=stream), RedisStreamsBroker(url, stream=stream, consumer="a", min_idle_ms=300),
                RedisStreamsBroker(url, stream=stream, consumer="b", min_idle_ms=300), 0.4)
    queue = request.getfixturevalue("sqs_queue")
    endpoint = request.getfixturevalue("moto_endpoint")
    return (SQSBroker(queue, endpoint_url=endpoint), SQSBroker(queue, endpoint_url=endpoint, visibility_timeout=1),
            SQSBroker(queue, endpoint_url=endpoint, visibility_timeout=1), 1.2)


def receive_all(broker, n: int, timeout: float = 5.0, ack: bool = False) -> list:
    got, deadline = [], time.monotonic() + timeout
    while len(got) < n and time.monotonic() < deadline:
        batch = broker.receive(10, 0.2)
        for d in batch if ack else []:
            broker.ack(d)  # a FIFO queue holds back an aggregate's next messages while earlier ones are in flight
        got.extend(batch)
    return got


def test_publish_receive_ack_in_order(broker_pair):
    pub, a, _, _ = broker_pair
    messages = [msg(i) for i in range(15)]
    pub.publish(messages)
    got = receive_all(a, 15, ack=True)
    assert [d.message["id"] for d in got] == [m["id"] for m in messages]
    assert all(d.attempt == 1 for d in got)
    time.sleep(0.1)
    assert a.receive(10, 0.2) == []


def test_unacked_delivery_comes_back_to_another_consumer(broker_pair):
    pub, a, b, wait = broker_pair
    m = msg(1)
    pub.publish([m])
    [first] = receive_all(a, 1)  # consumer A "dies" holding it
    time.sleep(wait)
    [again] = receive_all(b, 1)
    assert again.message == first.message and again.attempt == 2
    b.ack(again)
    time.sleep(wait)
    assert b.receive(10, 0.2) == [] and a.receive(10, 0.2) == []


def test_redis_reclaims_pending_from_a_dead_consumer(redis_url):
    stream = f"s-{uuid.uuid4().hex[:6]}"
    dead = RedisStreamsBroker(redis_url, stream=stream, consumer="dead")
    live = RedisStreamsBroker(redis_url, stream=stream, consumer="live", min_idle_ms=200)
    dead.publish([msg(1), msg(2)])
    assert len(dead.receive(10, 0.2)) == 2
    assert live.receive(10, 0.1) == []  # not idle long enough yet
    time.sleep(0.25)
    reclaimed = live.receive(10, 0.1)
    assert [d.attempt for d in reclaimed] == [2, 2]
    assert live.redis.xpending(stream, live.group)["consumers"][0]["name"] == b"live"
