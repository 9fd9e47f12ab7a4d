"""How a search's words are read and its matches marked, alone."""

from __future__ import annotations

from app.services.search import snippet, words


def test_a_long_message_is_cut_around_its_first_match():
    body = " ".join(f"word{n}" for n in range(60)) + " refund " + "tail " * 60

    parts = snippet(body, ["refund"])

    assert len(parts) == 3 and parts[1] == "refund"
    assert parts[0].startswith("…") and parts[2].endswith("…")
    assert len("".join(parts)) <= 142  # 140 code points and the two "…"
    assert len(parts[0]) <= 32  # at most 30 before the match, then the "…"


def test_every_occurrence_of_every_word_is_marked_and_newlines_become_spaces():
    parts = snippet("Order late.\nThe ORDER was late again", ["order", "late"])

    assert parts == ["", "Order", " ", "late", ". The ", "ORDER", " was ", "late", " again"]


def test_the_words_of_a_search_are_letters_and_digits():
    assert words("  Dana@Example.com  order_42 ") == ["dana", "example", "com", "order", "42"]
    assert words("%_!") == []
    assert words("ünïcode Straße") == ["ünïcode", "straße"]
    assert len(words(" ".join(f"w{n}" for n in range(20)))) == 8
