"""afk.approvals.display: every character that could hide or forge text on an approver's
screen is shown as a visible escape, and tool names outside the safe pattern are marked."""

from __future__ import annotations

import json

import pytest

from afk.approvals.display import (
    HIDDEN_MARKER,
    SAFE_TOOL_NAME,
    Escaper,
    escape,
    escaped_json,
    has_hidden,
    is_safe_tool_name,
    tool_label,
    value_has_hidden,
)
from afk.errors import ConfigurationError
from afk.tools import Tool, tool

# One of each class the brief names, with the escape an approver must see instead.
HIDDEN = [
    pytest.param("\x00", "\\u0000", id="C0-nul"),
    pytest.param("\x1b", "\\u001b", id="C0-esc"),
    pytest.param("\x07", "\\u0007", id="C0-bell"),
    pytest.param("\n", "\\n", id="newline"),
    pytest.param("\t", "\\t", id="tab"),
    pytest.param("\r", "\\r", id="carriage-return"),
    pytest.param("\x7f", "\\u007f", id="DEL"),
    pytest.param("\x80", "\\u0080", id="C1-first"),
    pytest.param("\x9b", "\\u009b", id="C1-CSI"),
    pytest.param("\x9f", "\\u009f", id="C1-last"),
    pytest.param("\u202a", "\\u202a", id="bidi-LRE"),
    pytest.param("\u202e", "\\u202e", id="bidi-RLO"),
    pytest.param("\u2066", "\\u2066", id="bidi-LRI"),
    pytest.param("\u2069", "\\u2069", id="bidi-PDI"),
    pytest.param("\u200e", "\\u200e", id="LRM"),
    pytest.param("\u200f", "\\u200f", id="RLM"),
    pytest.param("\u061c", "\\u061c", id="arabic-letter-mark"),
    pytest.param("\u200b", "\\u200b", id="zero-width-space"),
    pytest.param("\u200c", "\\u200c", id="ZWNJ"),
    pytest.param("\u200d", "\\u200d", id="ZWJ"),
    pytest.param("\u2060", "\\u2060", id="word-joiner"),
    pytest.param("\u2064", "\\u2064", id="invisible-plus"),
    pytest.param("\ufeff", "\\ufeff", id="BOM"),
    pytest.param("\u00ad", "\\u00ad", id="soft-hyphen"),
    pytest.param("\u180e", "\\u180e", id="mongolian-vowel-separator"),
    pytest.param("\u3164", "\\u3164", id="hangul-filler"),
    pytest.param("\u115f", "\\u115f", id="hangul-choseong-filler"),
    pytest.param("\u1160", "\\u1160", id="hangul-jungseong-filler"),
    pytest.param("\U000e0001", "\\U000e0001", id="tag-language"),
    pytest.param("\U000e0041", "\\U000e0041", id="tag-A"),
    pytest.param("\U000e007f", "\\U000e007f", id="tag-cancel"),
    pytest.param("\ufe0f", "\\ufe0f", id="variation-selector-16"),
    pytest.param("\U000e0100", "\\U000e0100", id="variation-selector-17"),
    pytest.param("\u2028", "\\u2028", id="line-separator"),
    pytest.param("\u2029", "\\u2029", id="paragraph-separator"),
    pytest.param("\ue000", "\\ue000", id="private-use"),
    pytest.param("\ud800", "\\ud800", id="lone-surrogate"),
    pytest.param("\u0378", "\\u0378", id="unassigned"),
]

VISIBLE = ["plain ascii", "café — naïve", "日本語", "Ελληνικά", "emoji 🙂", "C:\\temp", '"quoted"']


@pytest.mark.parametrize(("char", "shown"), HIDDEN)
def test_each_hidden_character_becomes_a_visible_escape(char: str, shown: str) -> None:
    text = f"drop{char}table"
    assert escape(text) == f"drop{shown}table"
    assert has_hidden(text)
    assert not has_hidden(escape(text))


@pytest.mark.parametrize(("char", "shown"), HIDDEN)
def test_escaped_json_escapes_each_hidden_character_and_stays_exact(char: str, shown: str) -> None:
    value = {f"k{char}": [f"v{char}", {"n": f"x{char}"}]}
    for indent in (None, 2):
        text = escaped_json(value, indent=indent)
        # Nothing hidden on any line; a raw line break inside a string would not parse back.
        assert not any(has_hidden(line) for line in text.split("\n"))
        if not shown.startswith("\\U"):  # beyond the BMP, JSON needs a pair (tested below)
            assert shown in text
        assert json.loads(text) == value  # what the approver reads parses back exactly


@pytest.mark.parametrize("text", VISIBLE)
def test_visible_text_is_left_alone(text: str) -> None:
    assert escape(text) == text
    assert not has_hidden(text)
    exact = json.dumps({"a": text}, ensure_ascii=False, separators=(",", ":"))
    assert escaped_json({"a": text}) == exact


def test_escape_is_idempotent_so_layers_never_double_escape() -> None:
    text = "a\u202eb\x1b[2Kc\nd\U000e0041"
    once = escape(text)
    assert once == "a\\u202eb\\u001b[2Kc\\nd\\U000e0041"
    assert escape(once) == once
    assert escape(escaped_json({"x": text})) == escaped_json({"x": text})


def test_a_forged_prompt_line_stays_on_one_visible_line() -> None:
    forged = "drop_table\x1b[2K\r    tool: list_tables"
    shown = escape(forged)
    assert "\x1b" not in shown and "\r" not in shown
    assert shown == "drop_table\\u001b[2K\\r    tool: list_tables"


def test_escaped_json_sorts_keys_and_is_compact_by_default() -> None:
    assert escaped_json({"b": 1, "a": "\u202e"}) == '{"a":"\\u202e","b":1}'
    assert escaped_json({"b": 1, "a": 2}, indent=2) == '{\n  "a": 2,\n  "b": 1\n}'


def test_escaped_json_beyond_the_bmp_is_a_valid_surrogate_pair() -> None:
    text = escaped_json("tag\U000e0041")
    assert text == '"tag\\udb40\\udc41"'
    assert json.loads(text) == "tag\U000e0041"


class _Odd:
    def __str__(self) -> str:
        return "odd\u202e"


def test_escaped_json_of_unusual_values_does_not_fail() -> None:
    assert escaped_json({1: "a", "b": 2}) == '{"1":"a","b":2}'  # unsortable keys: kept in order
    assert escaped_json({"v": _Odd()}) == '{"v":"odd\\u202e"}'  # shown through str(), escaped
    assert value_has_hidden({"v": _Odd()})
    assert escaped_json(None) == "null"


def test_value_has_hidden_looks_into_keys_and_nested_values() -> None:
    assert value_has_hidden({"a\u200b": 1})
    assert value_has_hidden({"a": [1, {"b": "\x9b"}]})
    assert value_has_hidden(("ok", "\u202e"))
    assert not value_has_hidden({"a": [1, 2.5, True, None, "café"]})


@pytest.mark.parametrize(
    "name", ["refund", "drop_table", "_private", "ns.tool-v2", "A" * 64, "x1.2_3-4"]
)
def test_safe_tool_names_are_shown_as_they_are(name: str) -> None:
    assert is_safe_tool_name(name)
    assert tool_label(name) == name


@pytest.mark.parametrize(
    ("name", "label"),
    [
        ("drop\x1b[2K", 'unknown-tool "drop\\u001b[2K"'),
        ("drop_table\n", 'unknown-tool "drop_table\\n"'),
        ("list\u202etables", 'unknown-tool "list\\u202etables"'),
        ("ref\u200bund", 'unknown-tool "ref\\u200bund"'),
        ("refund\x9b", 'unknown-tool "refund\\u009b"'),
        ("\u0440efund", 'unknown-tool "\u0440efund"'),  # Cyrillic look-alike: marked, not hidden
        ("1tool", 'unknown-tool "1tool"'),
        ("-tool", 'unknown-tool "-tool"'),
        ("has space", 'unknown-tool "has space"'),
        ('quote"d', 'unknown-tool "quote\\"d"'),
        ("", 'unknown-tool ""'),
        ("A" * 65, f'unknown-tool "{"A" * 65}"'),
    ],
)
def test_other_tool_names_are_quoted_escaped_and_marked(name: str, label: str) -> None:
    assert not is_safe_tool_name(name)
    assert tool_label(name) == label


def test_escaper_remembers_whether_anything_was_escaped() -> None:
    esc = Escaper()
    assert esc.text("plain") == "plain" and esc.json({"a": 1}) == '{"a":1}'
    assert esc.tool("refund") == "refund" and esc.tool(None) == "(model call)"
    assert esc.marker() == []
    assert esc.json({"a": "x\x1b"}) == '{"a":"x\\u001b"}'  # JSON escapes C0 too: still marked
    assert esc.marker() == [HIDDEN_MARKER]
    by_text, by_tool = Escaper(), Escaper()
    assert by_text.text("a\u200b") == "a\\u200b" and by_text.marker() == [HIDDEN_MARKER]
    assert by_tool.tool("t\u202e") == 'unknown-tool "t\\u202e"'
    assert by_tool.marker() == [HIDDEN_MARKER]
    unsafe_but_visible = Escaper()
    assert unsafe_but_visible.tool("has space") == 'unknown-tool "has space"'
    assert not unsafe_but_visible.escaped  # marked unknown, but nothing was hidden


def test_the_marker_says_what_happened() -> None:
    assert HIDDEN_MARKER.startswith("! ") and "\\u" in HIDDEN_MARKER
    assert not has_hidden(HIDDEN_MARKER)


# -- tool definitions --------------------------------------------------------------------------
def _fn() -> str:
    return "ok"


@pytest.mark.parametrize(
    "name", ["drop_table\n", "drop\x1b[2K", "list\u202etables", "ref\u200bund", "\u0440efund"]
)
def test_a_tool_cannot_be_defined_with_a_name_outside_the_safe_pattern(name: str) -> None:
    # "drop_table\n" was accepted before: the old check's `$` matched before a final newline.
    with pytest.raises(ConfigurationError) as info:
        Tool(_fn, name=name)
    message = str(info.value)
    assert repr(name) in message and SAFE_TOOL_NAME.pattern in message
    with pytest.raises(ConfigurationError):
        tool(name=name)(_fn)


def test_a_tool_may_be_defined_with_any_safe_name() -> None:
    assert Tool(_fn, name="billing.refund-v2").name == "billing.refund-v2"
    assert tool(_fn).name == "_fn"
