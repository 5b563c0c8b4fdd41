"""The service area: the 14 prefecture-level cities of Guangxi (SPEC.md §4.1), and how a city a person
typed is read (``南宁``, ``南宁市``, ``广西南宁市`` and ``广西壮族自治区南宁市`` are all 南宁)."""

from __future__ import annotations

GUANGXI_CITIES: tuple[str, ...] = (
    "南宁", "柳州", "桂林", "梧州", "北海", "防城港", "钦州", "贵港", "玉林", "百色", "贺州", "河池", "来宾", "崇左",
)
_PROVINCE_PREFIXES = ("广西壮族自治区", "广西自治区", "广西")

#: What a person is told when a city is outside the service area (every one of the 14 named).
OUTSIDE_AREA = f"仅支持广西 14 个地级市：{'、'.join(GUANGXI_CITIES)}"


def guangxi_city(raw: object) -> str | None:
    """The city's short name (``南宁``) if ``raw`` names one of the 14, with or without 市 / the province; else None."""
    if not isinstance(raw, str):
        return None
    text = "".join(raw.split())  # no blanks inside or around
    for prefix in _PROVINCE_PREFIXES:
        if text.startswith(prefix):
            text = text[len(prefix):]
            break
    if text.endswith("市"):
        text = text[:-1]
    return text if text in GUANGXI_CITIES else None
