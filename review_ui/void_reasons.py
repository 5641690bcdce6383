"""The numbered reasons a reviewer voids a case with (V then the number on the case page); the zh-CN text is what the
case's history records, so the record reads the same whichever language the reviewer's page was in.

>>> reason_text("3", "")
'车牌不清'
>>> reason_text("1", "摊位是画上去的"), reason_text("", "自填"), reason_text("9", "")
('误检：无违法行为：摊位是画上去的', '自填', '')
"""

from __future__ import annotations

# (zh-CN, en), numbered from 1 on the page: the digit keys 1-9 reach them all.
VOID_REASONS: tuple[tuple[str, str], ...] = (
    ("误检：无违法行为", "False detection: no violation"),
    ("证据不清：时间、地点或事实无法认定", "Evidence unclear: time, place or facts cannot be established"),
    ("车牌不清", "Plate unreadable"),
    ("未达停留时长，已离开", "Left before the dwell time"),
    ("重复案件", "Duplicate of another case"),
    ("点位或区域不符", "Wrong point or zone"),
)


def reason_text(number: str, typed: str) -> str:
    """The reason recorded: the numbered reason picked (if any) followed by what was typed; '' when neither."""
    typed = typed.strip()
    if number.isdigit() and 1 <= int(number) <= len(VOID_REASONS):
        picked = VOID_REASONS[int(number) - 1][0]
        return f"{picked}：{typed}" if typed else picked
    return typed
