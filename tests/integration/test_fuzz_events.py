"""Promise 3: any JSON on any event gets a contract answer, and nothing breaks.

Hypothesis throws arbitrary JSON (wrong types, missing fields, huge numbers, nested
junk, unicode, NUL, HTML) and near-miss payloads at every event, from a customer and
from an admin, over live test-client sockets on the real database.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import drain, emit, heard

EVENTS = [
    "send_message",
    "list_rooms",
    "inbox_counts",
    "history",
    "mark_read",
    "typing",
    "set_status",
    "customer_profile",
    "list_canned",
    "save_canned",
    "delete_canned",
]
CODES = {
    "unauthorized",
    "forbidden",
    "not_found",
    "validation_error",
    "rate_limited",
    "conflict",
}  # internal_error would mean the server failed on a client's input

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.sampled_from([0, -1, 1, 2**31, 2**63, 10**30, -(10**30)])
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=50)
    | st.sampled_from(["", " ", "\x00", "<script>alert(1)</script>", "é😀", "open", "resolved"])
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
FIELDS = [
    "body",
    "room_id",
    "client_id",
    "status",
    "q",
    "limit",
    "before",
    "before_id",
    "after_id",
    "message_id",
    "is_typing",
    "internal",
    "id",
    "shortcut",
]
near_misses = st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=6)
payloads = json_values | near_misses

FUZZ = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def assert_contract_answer(ack, client):
    assert isinstance(ack, dict) and isinstance(ack.get("ok"), bool), ack
    if not ack["ok"]:
        assert set(ack) == {"ok", "error"}
        assert ack["error"]["code"] in CODES, ack
        assert isinstance(ack["error"]["message"], str)
        assert "Traceback" not in ack["error"]["message"]
    assert client.is_connected("/chat")


@pytest.fixture
def sockets(app, connect, customer, admin, monkeypatch):
    """A customer with a room (id 1 is likely theirs) and an admin, connected once."""
    cust, support = connect(customer), connect(admin)
    emit(cust, "send_message", {"body": "seed"})
    # Past any limit: every example must reach the event's own checks.
    monkeypatch.setitem(app.config, "CHAT_RATE_LIMIT", (10**6, 10))
    monkeypatch.setitem(app.config, "CHAT_EVENT_RATE_LIMIT", (10**6, 10))
    return {"customer": cust, "admin": support}


@pytest.mark.parametrize("event", EVENTS)
@pytest.mark.parametrize("who", ["customer", "admin"])
def test_any_payload_gets_a_contract_answer(app, sockets, event, who):
    client = sockets[who]

    @FUZZ
    @given(payload=payloads)
    def run(payload):
        assert_contract_answer(emit(client, event, payload), client)

    run()


@pytest.mark.parametrize("event", EVENTS)
def test_no_payload_and_extra_arguments_get_a_contract_answer(sockets, event):
    client = sockets["customer"]
    assert_contract_answer(client.emit(event, namespace="/chat", callback=True), client)
    ack = client.emit(event, {"room_id": 1}, "extra", 3, namespace="/chat", callback=True)
    assert_contract_answer(ack, client)


def test_after_the_fuzz_the_server_still_serves_everyone(app, http, sockets, users, connect):
    client = sockets["customer"]

    @FUZZ
    @given(event=st.sampled_from(EVENTS), payload=payloads)
    def run(event, payload):
        emit(client, event, payload)

    run()
    assert http.get("/healthz").status_code == 200
    newcomer, support = connect(users.make("customer")), sockets["admin"]
    drain(support)
    ack = emit(newcomer, "send_message", {"body": "hello after the storm"})
    assert ack["ok"] is True
    assert ack["message"] in heard(support, "new_message")
