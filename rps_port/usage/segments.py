"""SMS segment counting, the way carriers (and Twilio's segment calculator) count.

GSM-7 when every character is in the GSM 03.38 basic table or its extension table: one segment
holds 160 septets, a concatenated segment 153 (7 go to the UDH); an extension character takes two
septets (escape + char) and is never split across segments. Otherwise UCS-2: 70 UTF-16 code units,
67 per concatenated segment, and a surrogate pair (e.g. an emoji) is never split.
"""

from __future__ import annotations

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")

GSM7_SINGLE, GSM7_MULTI = 160, 153
UCS2_SINGLE, UCS2_MULTI = 70, 67


def is_gsm7(body: str) -> bool:
    return all(ch in GSM7_BASIC or ch in GSM7_EXTENSION for ch in body)


def _pack(units: list[int], single: int, multi: int) -> int:
    """Segments needed for characters of the given sizes, none split across a segment boundary."""
    total = sum(units)
    if total <= single:
        return 1
    segments, used = 1, 0
    for size in units:
        if used + size > multi:
            segments += 1
            used = 0
        used += size
    return segments


def encoding(body: str) -> str:
    return "GSM-7" if is_gsm7(body) else "UCS-2"


def sms_segments(body: str) -> int:
    """How many SMS segments `body` is billed as (an empty body is one segment, as Twilio bills it)."""
    if is_gsm7(body):
        return _pack([2 if ch in GSM7_EXTENSION else 1 for ch in body], GSM7_SINGLE, GSM7_MULTI)
    return _pack([2 if ord(ch) > 0xFFFF else 1 for ch in body], UCS2_SINGLE, UCS2_MULTI)
