"""SMS segments at every boundary, as Twilio's segment calculator counts them."""

from __future__ import annotations

import pytest

from rps_port.usage import sms_segments
from rps_port.usage.segments import encoding

EMOJI = "\U0001F600"  # outside the BMP: a surrogate pair in UCS-2


@pytest.mark.parametrize(
    ("body", "segments"),
    [
        ("", 1),
        ("a", 1),
        ("a" * 160, 1),
        ("a" * 161, 2),
        ("a" * 306, 2),
        ("a" * 307, 3),
        ("a" * 459, 3),
        ("a" * 460, 4),
        # extension characters take two septets
        ("€" * 80, 1),
        ("a" + "€" * 80, 2),
        ("a" * 158 + "^", 1),
        ("a" * 159 + "^", 2),
        # ...and are never split: 152 septets + an escape pair cannot fit 153, so it moves on
        ("a" * 152 + "{" + "a" * 9, 2),
        ("a" * 152 + "{" + "a" * 152, 3),
        ("a" * 151 + "{" + "a" * 153, 2),
        # GSM-7 basic-table letters that are not ASCII stay GSM-7
        ("é" * 160, 1),
        ("Ñ" * 161, 2),
        # one character outside GSM-7 switches the whole message to UCS-2
        ("a" * 69 + "ç", 1),
        ("a" * 70 + "ç", 2),
        ("ç" * 70, 1),
        ("ç" * 71, 2),
        ("ç" * 134, 2),
        ("ç" * 135, 3),
        # surrogate pairs count two units and are never split across segments
        (EMOJI * 35, 1),
        ("a" + EMOJI * 35, 2),
        ("a" * 68 + EMOJI, 1),
        ("a" * 69 + EMOJI, 2),
        ("a" * 65 + EMOJI + "a" * 67, 2),
        ("a" * 66 + EMOJI + "a" * 66, 3),
    ],
)
def test_segments(body: str, segments: int) -> None:
    assert sms_segments(body) == segments


def test_encoding_detection() -> None:
    assert encoding("Order RPS-2026-000001 paid: 19.99 USD.") == "GSM-7"
    assert encoding("price in €, {braces} and [brackets]") == "GSM-7"
    assert encoding("Grüße aus Köln") == "GSM-7"  # ü, ß, ö are in the GSM-7 basic table
    assert encoding("naïve") == "UCS-2"  # ï is not
    assert encoding("tab\there") == "UCS-2"  # neither is a tab
