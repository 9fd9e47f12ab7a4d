"""Socket.IO packets through orjson, alone."""

from __future__ import annotations


def test_packets_round_trip_through_orjson_and_big_numbers_still_decode():
    from app.wire import OrjsonForSocketIO as wire

    payload = {"body": "héllo \u2603", "room_id": 3, "nested": [1, None, True]}
    assert wire.loads(wire.dumps(payload)) == payload
    assert wire.dumps({"n": 2**70}) == '{"n": 1180591620717411303424}'  # stdlib fallback
    assert wire.loads("[1e999]") == [float("inf")]  # stdlib fallback too
