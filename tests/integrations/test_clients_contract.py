"""Every request the clients build is one the providers' OpenAPI documents accept; retries behave."""

from __future__ import annotations

import time

import pytest

from integrations.fakes import SENDGRID_SPEC, TWILIO_SPEC, Scripted, contract_errors
from rps_port.integrations.errors import PermanentProviderError, TransientProviderError
from rps_port.integrations.http import RetryPolicy, parse_retry_after
from rps_port.integrations.sendgrid import Email, SendGridClient
from rps_port.integrations.twilio import SMS, TwilioClient

SID = "AC" + "0123456789abcdef" * 2
FAST = RetryPolicy(attempts=4, initial=0.01, max_wait=0.5, deadline=5, timeout=2)


def sendgrid(fake, **kw) -> SendGridClient:
    return SendGridClient("SG.test-key", base_url=fake.url, from_email="orders@example.com", policy=kw.pop("policy", FAST))


def twilio(fake, **kw) -> TwilioClient:
    return TwilioClient(SID, "auth-token", base_url=fake.url, from_number="+15005550006", policy=kw.pop("policy", FAST))


def test_sendgrid_mail_send_matches_spec(fake_sendgrid):
    client = sendgrid(fake_sendgrid)
    ref = client.send(Email(to="ada@example.com", to_name="Ada", subject="Order placed", text="hi", html="<p>hi</p>", idempotency_key="k1"))
    [req] = fake_sendgrid.requests
    assert req.errors == []
    assert req.status == 202 and ref
    assert req.method == "POST" and req.path == "/v3/mail/send"
    assert req.headers["authorization"] == "Bearer SG.test-key"
    assert req.headers["content-type"].startswith("application/json")
    body = req.json()
    assert body["personalizations"][0]["to"] == [{"email": "ada@example.com", "name": "Ada"}]
    assert body["personalizations"][0]["custom_args"] == {"idempotency_key": "k1"}


def test_twilio_message_create_matches_spec(fake_twilio):
    client = twilio(fake_twilio)
    sent = client.send(SMS(to="+447700900123", body="Order placed €5", idempotency_key="k2"))
    [req] = fake_twilio.requests
    assert req.errors == []
    assert req.status == 201
    assert req.path == f"/2010-04-01/Accounts/{SID}/Messages.json"
    assert req.headers["authorization"].startswith("Basic ")
    assert req.headers["content-type"].startswith("application/x-www-form-urlencoded")
    assert req.headers["i-twilio-idempotency-token"] == "k2"
    assert req.form() == {"To": "+447700900123", "From": "+15005550006", "Body": "Order placed €5"}
    assert sent.sid.startswith("SM") and sent.num_segments == 1


def test_the_contract_check_rejects_what_the_spec_rejects():
    # Missing the required To, bad account sid, wrong auth scheme, missing personalizations.
    assert contract_errors(TWILIO_SPEC, "POST", f"/2010-04-01/Accounts/{SID}/Messages.json",
                           {"authorization": "Basic eDp5", "content-type": "application/x-www-form-urlencoded"}, b"Body=x")
    assert contract_errors(TWILIO_SPEC, "POST", "/2010-04-01/Accounts/AC1/Messages.json",
                           {"authorization": "Basic eDp5", "content-type": "application/x-www-form-urlencoded"}, b"To=%2B1555&Body=x")
    assert contract_errors(SENDGRID_SPEC, "POST", "/v3/mail/send",
                           {"authorization": "Basic eDp5", "content-type": "application/json"},
                           b'{"personalizations":[{"to":[{"email":"a@example.com"}]}],"from":{"email":"b@example.com"},"subject":"s","content":[{"type":"text/plain","value":"v"}]}')
    assert contract_errors(SENDGRID_SPEC, "POST", "/v3/mail/send",
                           {"authorization": "Bearer k", "content-type": "application/json"}, b'{"from":{"email":"b@example.com"}}')


def test_429_then_success_honours_retry_after(fake_twilio):
    fake_twilio.script.append(Scripted(429, {"code": 20429, "message": "Too Many Requests", "status": 429}, {"Retry-After": "0.3"}))
    client = twilio(fake_twilio)
    started = time.monotonic()
    sent = client.send(SMS(to="+15551234567", body="x", idempotency_key="k"))
    assert time.monotonic() - started >= 0.3
    assert [r.status for r in fake_twilio.requests] == [429, 201]
    assert sent.sid


def test_5xx_retried_then_transient_error(fake_sendgrid):
    fake_sendgrid.down_for(10)
    client = sendgrid(fake_sendgrid)
    with pytest.raises(TransientProviderError) as info:
        client.send(Email(to="a@example.com", subject="s", text="t"))
    assert info.value.status_code == 503
    assert len(fake_sendgrid.requests) == FAST.attempts


def test_4xx_is_permanent_and_not_retried(fake_sendgrid):
    fake_sendgrid.script.append(Scripted(403, {"errors": [{"message": "access forbidden", "field": None}]}))
    client = sendgrid(fake_sendgrid)
    with pytest.raises(PermanentProviderError) as info:
        client.send(Email(to="a@example.com", subject="s", text="t"))
    assert info.value.status_code == 403 and "access forbidden" in str(info.value)
    assert len(fake_sendgrid.requests) == 1


def test_connection_refused_is_transient_within_the_deadline():
    client = SendGridClient("k", base_url="http://127.0.0.1:9", policy=RetryPolicy(attempts=3, initial=0.01, deadline=2, timeout=0.5))
    with pytest.raises(TransientProviderError):
        client.send(Email(to="a@example.com", subject="s", text="t"))


def test_retry_after_forms():
    assert parse_retry_after("2") == 2.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
    assert parse_retry_after("soon") is None
