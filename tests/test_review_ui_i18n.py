"""The review UI's catalogue: complete in both languages, in step with the domain, used by every page."""

from __future__ import annotations

import re
import string
from datetime import timedelta
from pathlib import Path

import pytest

from cases.lifecycle import Role, State
from feixian.domain import Category
from pipeline.taxonomy import SUBTYPE_LABELS
from review_ui.i18n import LANGUAGES, Translator, message_keys, pick_language

UI = Path(__file__).resolve().parents[1] / "review_ui"
TEMPLATES = sorted((UI / "templates").glob("*.html"))


def _placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_every_message_in_both_languages_with_the_same_placeholders() -> None:
    zh, en = Translator("zh-CN"), Translator("en")
    for key in message_keys():
        assert zh.template(key).strip() and en.template(key).strip(), key
        assert _placeholders(zh.template(key)) == _placeholders(en.template(key)), key


def test_templates_use_only_catalogue_keys() -> None:
    used = set()
    for template in TEMPLATES:
        used |= set(re.findall(r'\bt\(\s*["\']([a-z_.]+)["\']', template.read_text(encoding="utf-8")))
    assert used, "no t('...') calls found in the templates"
    assert used - message_keys() == set()


def test_templates_hold_no_chinese_text_of_their_own() -> None:
    for template in TEMPLATES:
        assert not re.search(r"[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]", template.read_text(encoding="utf-8")), (
            template.name
        )


def test_domain_values_all_have_labels() -> None:
    keys = message_keys()
    wanted = (
        {f"state.{s.value}" for s in State}
        | {f"role.{r.value}" for r in Role}
        | {f"category.{c.value}" for c in Category}
        | {f"subtype.{s}" for s in SUBTYPE_LABELS}
    )
    assert wanted - keys == set()


@pytest.mark.parametrize("lang", LANGUAGES)
def test_subtype_labels_match_the_taxonomy(lang: str) -> None:
    t = Translator(lang)
    assert {s: t(f"subtype.{s}") for s in SUBTYPE_LABELS} == {s: labels[lang] for s, labels in SUBTYPE_LABELS.items()}


def test_unknown_values_show_as_stored_and_unknown_keys_fail() -> None:
    t = Translator("en")
    assert t.label("state", "archived") == "archived"
    with pytest.raises(KeyError):
        t("no.such.key")
    with pytest.raises(ValueError, match="unsupported language"):
        Translator("fr")


@pytest.mark.parametrize(
    ("span", "zh", "en"),
    [
        (timedelta(seconds=59), "0分钟", "0 min"),
        (timedelta(minutes=59), "59分钟", "59 min"),
        (timedelta(hours=2, minutes=5), "2小时5分", "2 h 5 min"),
        (timedelta(days=3, hours=1, minutes=30), "3天1小时", "3 d 1 h"),
        (timedelta(minutes=-5), "0分钟", "0 min"),
    ],
)
def test_age(span: timedelta, zh: str, en: str) -> None:
    assert (Translator("zh-CN").age(span), Translator("en").age(span)) == (zh, en)


def test_keyframe_labels() -> None:
    t = Translator("zh-CN")
    assert [t.keyframe(x) for x in ("first_seen", "after_dwell", "best_3", "stood_since")] == [
        "首次发现",
        "超时停留",
        "最佳画面 3",
        "最早可见",
    ]


def test_language_choice() -> None:
    assert pick_language("en", "zh-CN") == "en"
    assert pick_language(None, "en") == "en"
    assert pick_language("xx", None) == "zh-CN"
