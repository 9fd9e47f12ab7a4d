"""The socket stack's lean settings: a faster JSON for packets, and no compression of
small WebSocket frames.

- Every Socket.IO packet is JSON; orjson encodes and decodes it several times faster
  than the standard library (python-socketio accepts any module with dumps/loads).
- Chat frames are a few hundred bytes: compressing each one (permessage-deflate, which
  browsers and Node clients offer) costs more CPU than it saves bytes. The middleware
  hides the client's offer, so no compression is negotiated, under either server.
"""

from __future__ import annotations

import json

import orjson


class OrjsonForSocketIO:
    """The `json` module python-socketio and python-engineio call.

    orjson refuses integers past 64 bits, which a client may send (and the schemas
    then answer `validation_error`): those rare packets go through the standard
    library, so the answer stays the same as before."""

    JSONDecodeError = json.JSONDecodeError

    @staticmethod
    def dumps(obj, **options) -> str:
        try:
            return orjson.dumps(obj).decode()
        except TypeError:
            return json.dumps(obj, **options)

    @staticmethod
    def loads(text, **options):
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            return json.loads(text, **options)


def without_websocket_compression(wsgi_app):
    def app(environ, start_response):
        environ.pop("HTTP_SEC_WEBSOCKET_EXTENSIONS", None)
        return wsgi_app(environ, start_response)

    return app
