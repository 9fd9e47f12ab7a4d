"""The inbox's search through message text: `list_rooms {q}` finds the rooms whose
messages hold the words, and says what matched (`match`), with the matches marked.

On PostgreSQL the words must begin words of a message (full-text search with prefixes,
served by a GIN index); on SQLite they may appear anywhere (LIKE).
"""

from __future__ import annotations

import pytest
from sqlalchemy import text

from app.extensions import db
from tests.conftest import ON_POSTGRES, emit


@pytest.fixture
def inbox(connect, users, admin):
    """Three customers' rooms with some history, and an admin's socket."""
    texts = {
        "Paula Parcel": ["Hello there", "My parcel never arrived, order 4417"],
        "Rita Refund": ["I would like a refund please", "It arrived broken"],
        "Sam Silent": ["Just saying hi"],
    }
    rooms = {}
    for name, bodies in texts.items():
        sock = connect(users.make("customer", name=name))
        for body in bodies:
            rooms[name] = emit(sock, "send_message", {"body": body})["message"]["room_id"]
    return {"rooms": rooms, "admin": connect(admin)}


def search(sock, q, **extra):
    ack = emit(sock, "list_rooms", {"q": q, **extra})
    assert ack["ok"] is True, ack
    return ack["rooms"]


def test_a_word_of_a_message_finds_its_room_and_says_what_matched(inbox):
    found = search(inbox["admin"], "parcel")

    assert [room["id"] for room in found] == [inbox["rooms"]["Paula Parcel"]]
    match = found[0]["match"]
    assert match["parts"] == ["My ", "parcel", " never arrived, order 4417"]
    assert match["internal"] is False
    assert isinstance(match["message_id"], int)


def test_the_start_of_a_word_is_enough_and_case_does_not_matter(inbox):
    found = search(inbox["admin"], "ARRIV")

    assert {room["id"] for room in found} == {
        inbox["rooms"]["Paula Parcel"],
        inbox["rooms"]["Rita Refund"],
    }
    for room in found:
        assert room["match"]["parts"][1].lower() == "arriv"


def test_every_word_must_be_in_the_same_message(inbox):
    assert [r["id"] for r in search(inbox["admin"], "order parcel")] == [
        inbox["rooms"]["Paula Parcel"]
    ]
    # "refund" and "broken" are both Rita's, but in two different messages
    assert search(inbox["admin"], "refund broken") == []


def test_the_newest_matching_message_of_a_room_is_the_one_shown(connect, users, admin):
    sock = connect(users.make("customer", name="Tess Twice"))
    emit(sock, "send_message", {"body": "tracking number lost"})
    newer = emit(sock, "send_message", {"body": "found the tracking number"})["message"]

    (room,) = search(connect(admin), "tracking")

    assert room["match"]["message_id"] == newer["id"]
    assert room["match"]["parts"] == ["found the ", "tracking", " number"]


def test_a_room_found_by_name_alone_has_no_match_and_rooms_without_q_have_no_key(inbox):
    (by_name,) = search(inbox["admin"], "sam sil")
    assert by_name["id"] == inbox["rooms"]["Sam Silent"]
    assert by_name["match"] is None

    listed = emit(inbox["admin"], "list_rooms", {})["rooms"]
    assert len(listed) == 3
    assert all("match" not in room for room in listed)


def test_a_search_that_matches_nothing_returns_no_rooms(inbox):
    assert search(inbox["admin"], "warranty") == []


def test_like_wildcards_and_punctuation_are_searched_as_text(inbox, connect, users):
    emit(connect(users.make("customer", name="Wade Wild")), "send_message", {"body": "50% off?"})

    assert search(inbox["admin"], "%") == []  # no words, and no name or email has a %
    assert search(inbox["admin"], "_") == []
    assert [r["customer"]["name"] for r in search(inbox["admin"], "50%")] == ["Wade Wild"]


def test_search_filters_and_pages_combine(inbox, connect, admin):
    support = inbox["admin"]
    emit(support, "set_status", {"room_id": inbox["rooms"]["Rita Refund"], "status": "resolved"})

    assert [r["id"] for r in search(support, "arrived", status="open")] == [
        inbox["rooms"]["Paula Parcel"]
    ]
    first = emit(support, "list_rooms", {"q": "arrived", "limit": 1})
    assert len(first["rooms"]) == 1 and first["next"]
    second = emit(support, "list_rooms", {"q": "arrived", "limit": 1, "before": first["next"]})
    assert len(second["rooms"]) == 1 and second["next"] is None
    assert second["rooms"][0]["match"] is not None
    assert first["rooms"][0]["id"] != second["rooms"][0]["id"]


def test_admins_find_internal_notes_and_see_them_marked(inbox):
    room_id = inbox["rooms"]["Sam Silent"]
    note = {"room_id": room_id, "body": "Escalated to billing", "internal": True}
    emit(inbox["admin"], "send_message", note)

    (found,) = search(inbox["admin"], "billing")

    assert found["id"] == room_id
    assert found["match"]["internal"] is True
    assert found["match"]["parts"] == ["Escalated to ", "billing", ""]


def test_a_customers_search_never_matches_an_internal_note(connect, users, admin):
    account = users.make("customer", name="Nora Notes")
    sock = connect(account)
    room_id = emit(sock, "send_message", {"body": "Where is it?"})["message"]["room_id"]
    emit(
        connect(admin), "send_message", {"room_id": room_id, "body": "Fraud risk", "internal": True}
    )

    assert search(sock, "fraud") == []
    (own,) = search(sock, "where")
    assert own["match"]["parts"] == ["", "Where", " is it?"]


def test_a_customer_never_finds_another_customers_room(inbox, connect, users):
    stranger = connect(users.make("customer", name="Sid Stranger"))
    emit(stranger, "send_message", {"body": "my own parcel question"})

    found = search(stranger, "parcel")

    assert [room["customer"]["name"] for room in found] == ["Sid Stranger"]


def test_the_http_list_finds_message_text_too(inbox, http, users, admin):
    answer = http.get(
        "/api/rooms?q=parcel", headers={"Authorization": f"Bearer {users.token(admin)}"}
    )

    assert answer.status_code == 200, answer.get_json()
    (room,) = answer.get_json()["rooms"]
    assert room["match"]["parts"][1] == "parcel"


@pytest.mark.skipif(not ON_POSTGRES, reason="the full-text index exists on PostgreSQL only")
def test_on_postgres_the_message_condition_is_served_by_the_full_text_index(app, inbox):
    from app.models import Message
    from app.services import search as search_module

    with app.app_context():
        query = db.select(Message.id).where(
            *search_module.message_conditions(["parcel"], with_notes=False)
        )
        sql = query.compile(db.engine, compile_kwargs={"literal_binds": True})
        db.session.execute(text("SET LOCAL enable_seqscan = off"))  # 5 rows: force the choice
        plan = db.session.execute(text(f"EXPLAIN {sql}")).scalars().all()
        db.session.rollback()
    assert any("ix_messages_body_fts" in line for line in plan), plan


def test_korean_words_are_found_with_their_particles(connect, users, admin):
    """Korean writes particles onto the word: "주문" must find "주문이" and "주문을".
    Inside a longer word ("재주문", a reorder) only SQLite's LIKE finds it; PostgreSQL
    matches the start of a word (docs/DECISIONS.md, "Searching Korean")."""
    rooms = {}
    for name, body in {
        "김민지": "주문이 아직 안 왔어요",
        "박서준": "주문을 취소하고 싶어요",
        "이하은": "재주문은 어떻게 하나요?",
        "최도윤": "배송 문의드립니다",
    }.items():
        sock = connect(users.make("customer", name=name))
        rooms[name] = emit(sock, "send_message", {"body": body})["message"]["room_id"]
    found = search(connect(admin), "주문")
    ids = {room["id"] for room in found}
    assert {rooms["김민지"], rooms["박서준"]} <= ids
    assert rooms["최도윤"] not in ids
    assert (rooms["이하은"] in ids) is (not ON_POSTGRES)
    for room in found:
        assert "주문" in room["match"]["parts"]
