"""<think> tag extraction: what a user of a DeepSeek-R1 / Qwen / MiniMax model sees as reasoning vs answer."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from omniroute_providers.formats.think_tags import ThinkTagSplitter, split_think_tags


def _feed_all(fragments: list[str]) -> list[tuple[str, str]]:
    splitter = ThinkTagSplitter()
    pieces: list[tuple[str, str]] = []
    for fragment in fragments:
        pieces.extend(splitter.feed(fragment))
    pieces.extend(splitter.flush())
    merged: list[tuple[str, str]] = []
    for kind, text in pieces:
        assert text, "no empty pieces"
        if merged and merged[-1][0] == kind:
            merged[-1] = (kind, merged[-1][1] + text)
        else:
            merged.append((kind, text))
    return merged


def test_leading_think_block_becomes_reasoning_and_separators_are_dropped() -> None:
    text = "<think>\nThe user wants 2+2.\n</think>\n\nIt is 4."
    assert split_think_tags(text) == ("The user wants 2+2.", "It is 4.")


def test_whitespace_before_leading_tag_is_dropped() -> None:
    assert split_think_tags("  \n<think>hmm</think>answer") == ("hmm", "answer")


def test_text_without_tags_passes_through_unchanged() -> None:
    for text in ["", "  hello ", "a < b and c > d", "<thin", "<think", "x</think>", "\n\n"]:
        assert split_think_tags(text) == ("", text)


def test_unclosed_think_block_is_all_reasoning() -> None:
    assert split_think_tags("<think>still thinking") == ("still thinking", "")


def test_later_think_block_is_extracted_too() -> None:
    assert _feed_all(["Intro. <think>aside</think> Rest."]) == [
        ("text", "Intro. "),
        ("reasoning", "aside"),
        ("text", "Rest."),
    ]


def test_tag_split_across_feeds_is_recognised() -> None:
    pieces = _feed_all(["<thi", "nk>rea", "son</th", "ink>", "ans", "wer"])
    assert pieces == [("reasoning", "reason"), ("text", "answer")]


def test_reasoning_streams_before_the_close_tag_arrives() -> None:
    splitter = ThinkTagSplitter()
    assert splitter.feed("<think>step one") == [("reasoning", "step one")]
    assert splitter.feed(" and two</") == [("reasoning", " and two")]
    assert splitter.feed("think>Done") == [("text", "Done")]
    assert splitter.flush() == []


def test_held_partial_tag_is_released_as_text_when_it_is_not_a_tag() -> None:
    splitter = ThinkTagSplitter()
    assert splitter.feed("a <") == [("text", "a ")]
    assert splitter.feed("b") == [("text", "<b")]


def test_leading_whitespace_only_response_is_kept() -> None:
    splitter = ThinkTagSplitter()
    assert splitter.feed("  ") == []
    assert splitter.flush() == [("text", "  ")]


_alphabet = st.sampled_from(
    ["<think>", "</think>", "<", ">", "/", "t", "h", "i", "n", "k", " ", "\n", "a", "b"]
)


@given(st.lists(_alphabet, max_size=40).map("".join), st.data())
def test_result_does_not_depend_on_how_text_is_split(text: str, data: st.DataObject) -> None:
    cuts = sorted(data.draw(st.lists(st.integers(0, len(text)), max_size=10)))
    fragments = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)]
    whole = _feed_all([text])
    assert _feed_all(fragments) == whole
    reasoning, visible = split_think_tags(text)
    assert "".join(t for k, t in whole if k == "reasoning") == reasoning
    assert "".join(t for k, t in whole if k == "text") == visible


@given(st.text(alphabet=st.characters(blacklist_characters="<"), max_size=50))
def test_tagless_text_is_never_altered(text: str) -> None:
    assert split_think_tags(text) == ("", text)


@given(
    st.text(max_size=30).filter(lambda s: "<" not in s), st.text(max_size=30).filter(lambda s: "<" not in s)
)
def test_think_block_then_answer(reasoning: str, answer: str) -> None:
    got_reasoning, got_answer = split_think_tags(f"<think>{reasoning}</think>{answer}")
    assert got_reasoning == reasoning.strip()
    assert got_answer == answer.lstrip()
