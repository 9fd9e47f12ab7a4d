"""The service layer alone: the chat's rules, called as the transports call them."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from app.database import transaction
from app.errors import Conflict, NotFound, Unauthorized, ValidationError
from app.extensions import db
from app.models import ChatRoom, Message, User
from app.services import rooms as rooms_service
from app.services.access import access_room
from app.services.inbox import list_rooms
from app.services.messages import list_history, send_message
from app.services.users import authenticate, register_user
from tests.conftest import needs_postgres


@pytest.fixture
def ctx(app):
    with app.app_context():
        yield
        db.session.remove()


def load(account) -> User:
    return db.session.get(User, account.id)


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def test_register_normalises_email_and_hashes_password(ctx):
    user = register_user(
        {"email": "  Mixed@Example.COM ", "password": "s3cret-pass", "name": " Mo "}
    )
    assert (user.email, user.name, user.role) == ("mixed@example.com", "Mo", "customer")
    assert user.password_hash.startswith("scrypt:") and "s3cret-pass" not in user.password_hash
    with pytest.raises(Conflict):
        register_user({"email": "MIXED@example.com", "password": "other-pass", "name": "X"})
    assert authenticate({"email": "mixed@EXAMPLE.com", "password": "s3cret-pass"}).id == user.id


@pytest.mark.parametrize(
    "data",
    [
        {"email": "no-at-sign", "password": "long enough", "name": "N"},
        {"email": "a@b", "password": "long enough", "name": "N"},
        {"email": "a b@c.de", "password": "long enough", "name": "N"},
        {"email": "a@c.de", "password": "short", "name": "N"},
        {"email": "a@c.de", "password": "long enough", "name": "   "},
        {"email": "a@c.de", "password": "long enough"},
        {"email": 5, "password": "long enough", "name": "N"},
        None,
        [],
    ],
)
def test_register_rejects_bad_input(ctx, data):
    with pytest.raises(ValidationError):
        register_user(data)
    assert count(User) == 0


def test_authenticate_refuses_wrong_password_and_unknown_email_alike(ctx, customer):
    with pytest.raises(Unauthorized) as wrong:
        authenticate({"email": customer.email, "password": "not the password"})
    with pytest.raises(Unauthorized) as unknown:
        authenticate({"email": "nobody@example.com", "password": "whatever1"})
    assert wrong.value.message == unknown.value.message


def test_access_room_hides_foreign_and_missing_rooms_alike(ctx, customer, other_customer, admin):
    own = send_message(load(customer), {"body": "mine"})["room_id"]
    foreign = send_message(load(other_customer), {"body": "theirs"})["room_id"]
    assert access_room(load(customer), own).id == own
    assert access_room(load(admin), foreign).id == foreign
    with pytest.raises(NotFound) as hidden:
        access_room(load(customer), foreign)
    with pytest.raises(NotFound) as missing:
        access_room(load(customer), 424242)
    assert hidden.value.message == missing.value.message


def test_admin_cannot_start_a_room(ctx, admin):
    with pytest.raises(ValidationError):
        send_message(load(admin), {"body": "hello"})
    assert count(ChatRoom) == 0


def test_first_message_creates_exactly_one_room(ctx, customer):
    user = load(customer)
    first = send_message(user, {"body": "one"})
    second = send_message(user, {"body": "two"})
    assert first["room_id"] == second["room_id"]
    assert count(ChatRoom) == 1 and count(Message) == 2


def test_room_creation_recovers_when_another_request_wins_the_race(ctx, customer, monkeypatch):
    """Another request inserted the room between our look-up and our insert: the unique
    constraint makes our insert do nothing, and we use the winner's room."""
    user = load(customer)
    with transaction() as session:
        winner, created = rooms_service.ensure_own_room(session, user)
    assert created is True
    real_lookup = rooms_service.get_own_room
    calls = []

    def stale_lookup(u):
        calls.append(u.id)
        return None if len(calls) == 1 else real_lookup(u)

    monkeypatch.setattr(rooms_service, "get_own_room", stale_lookup)
    with transaction() as session:
        room, created = rooms_service.ensure_own_room(session, user)
    assert (room.id, created) == (winner.id, False)
    assert count(ChatRoom) == 1


@needs_postgres
def test_racing_first_messages_make_one_room(app, customer):
    """Several first messages of one customer race on PostgreSQL: one room, all stored."""
    senders = 12
    barrier = threading.Barrier(senders)
    results, errors = [], []

    def send(i):
        with app.app_context():
            try:
                user = load(customer)
                barrier.wait(timeout=10)
                results.append(send_message(user, {"body": f"race {i}"}))
            except Exception as exc:  # collected and asserted below
                errors.append(exc)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=send, args=(i,)) for i in range(senders)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert errors == []
    assert len({r["room_id"] for r in results}) == 1
    with app.app_context():
        assert count(ChatRoom) == 1 and count(Message) == senders


def test_transaction_rolls_back_on_error_and_commits_on_success(ctx, customer):
    user = load(customer)
    with pytest.raises(RuntimeError), transaction() as session:
        session.add(
            Message(
                room_id=send_message(user, {"body": "a"})["room_id"],
                author_id=user.id,
                body="half-written",
            )
        )
        session.flush()
        raise RuntimeError("boom")
    db.session.remove()
    assert [m.body for m in db.session.scalars(select(Message))] == ["a"]


def test_unread_counts_are_per_side(ctx, customer, admin):
    cust, support = load(customer), load(admin)
    room_id = send_message(cust, {"body": "q1"})["room_id"]
    send_message(cust, {"body": "q2"})
    send_message(support, {"room_id": room_id, "body": "a1"})
    (admin_view,), _ = list_rooms(support, {})
    (customer_view,), _ = list_rooms(cust, {})
    assert admin_view["unread_count"] == 2
    assert customer_view["unread_count"] == 1
    assert customer_view["last_message"]["body"] == "a1"


def test_list_rooms_search_treats_wildcards_literally(ctx, users):
    plain = load(users.make("customer", name="Percy"))
    percent = load(users.make("customer", name="100% Bob"))
    for user in (plain, percent):
        send_message(user, {"body": "hi"})
    admin = load(users.make("admin"))
    found, _ = list_rooms(admin, {"q": "%"})
    assert [r["customer"]["name"] for r in found] == ["100% Bob"]
    found, _ = list_rooms(admin, {"q": "PERC"})
    assert [r["customer"]["name"] for r in found] == ["Percy"]
    found, _ = list_rooms(admin, {"q": plain.email.upper()})
    assert [r["customer"]["id"] for r in found] == [plain.id]


def test_list_rooms_pages_cover_every_room_once(ctx, users):
    customers = [load(users.make("customer")) for _ in range(7)]
    for user in customers:
        send_message(user, {"body": "hi"})
    admin = load(users.make("admin"))
    seen, cursor = [], None
    while True:
        page, cursor = list_rooms(admin, {"limit": 3, **({"before": cursor} if cursor else {})})
        seen += [r["customer"]["id"] for r in page]
        if cursor is None:
            break
    assert seen == [u.id for u in reversed(customers)]


def test_history_of_a_foreign_room_is_not_found(ctx, customer, other_customer):
    room_id = send_message(load(other_customer), {"body": "secret"})["room_id"]
    with pytest.raises(NotFound):
        list_history(load(customer), {"room_id": room_id})


@needs_postgres
def test_a_one_statement_transaction_commits_its_statement_and_hands_the_connection_back(app):
    """`core_transaction(one_statement=True)` runs without BEGIN on PostgreSQL: its one
    statement is committed when it returns, and the pooled connection goes back to
    ordinary transactions afterwards, even when the block fails."""
    from app.database import core_transaction, run_on_driver

    with app.app_context():
        with core_transaction() as connection:
            connection.exec_driver_sql("CREATE TABLE IF NOT EXISTS one_statement (n int)")
        try:
            with pytest.raises(ZeroDivisionError), core_transaction(one_statement=True) as conn:
                assert run_on_driver(conn, "INSERT INTO one_statement VALUES (1) RETURNING n", ())
                1 / 0  # noqa: B018 - the failure after the statement
            with core_transaction() as connection:
                assert connection.connection.dbapi_connection.autocommit is False
                assert run_on_driver(connection, "SELECT count(*) FROM one_statement", ()) == (1,)
        finally:
            with core_transaction() as connection:
                connection.exec_driver_sql("DROP TABLE one_statement")
