"""The inbox's search through message text: which rooms hold a message matching `q`,
and the matched text of each, cut to a snippet with the matches marked.

On PostgreSQL a message matches when each word of `q` begins a word of its body
(full-text search, the `simple` configuration, so no language's stemming or stop
words), served by the GIN index `ix_messages_body_fts`. On SQLite, the quick start's
database, each word must appear somewhere in the body (`LIKE`): the same results for
the searches people type, without an index.
"""

from __future__ import annotations

import re

from sqlalchemy import func, literal_column, select

from ..extensions import db
from ..models import Message

# The index's expression, written the same way here so the planner can use it.
TS_CONFIG = literal_column("'simple'::regconfig")
MAX_WORDS = 8
SNIPPET = 140  # code points of a message shown around its first match
LEAD = 30  # of which at most this many come before it (a list row shows about 70)

_WORD = re.compile(r"[^\W_]+")


def words(q: str) -> list[str]:
    """The words of a search, lower-case, as PostgreSQL's parser splits text: runs of
    letters and digits (so `@`, `.` and `_` separate words). At most MAX_WORDS."""
    found = []
    for word in _WORD.findall(q.lower()):
        if word not in found:
            found.append(word)
    return found[:MAX_WORDS]


def _on_postgres() -> bool:
    return db.session.get_bind().dialect.name == "postgresql"


def like_anywhere(text: str) -> str:
    """A LIKE pattern (escape character `\\`) matching `text` anywhere, as text: its
    own `%`, `_` and `\\` match only themselves."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def message_conditions(terms: list[str], *, with_notes: bool) -> list:
    """Conditions on Message for a body matching every one of `terms`."""
    if _on_postgres():
        # Only letters and digits reach here, so the terms need no quoting.
        query = " & ".join(f"{term}:*" for term in terms)
        conditions = [
            func.to_tsvector(TS_CONFIG, Message.body).op("@@")(func.to_tsquery(TS_CONFIG, query))
        ]
    else:
        conditions = [
            func.lower(Message.body).like(like_anywhere(term), escape="\\") for term in terms
        ]
    if not with_notes:
        conditions.append(Message.internal.is_(False))
    return conditions


def rooms_matching(terms: list[str], *, with_notes: bool):
    """The ids of the rooms holding a message that matches `terms` (a subquery)."""
    return select(Message.room_id).where(*message_conditions(terms, with_notes=with_notes))


def matches(room_ids: list[int], terms: list[str], *, with_notes: bool) -> dict[int, dict]:
    """Each room's newest message matching `terms`, as the contract's `match` object
    (`{"message_id", "internal", "parts"}`), by room id; rooms without one are left
    out. One statement."""
    if not room_ids or not terms:
        return {}
    newest = (
        select(func.max(Message.id).label("id"))
        .where(Message.room_id.in_(room_ids), *message_conditions(terms, with_notes=with_notes))
        .group_by(Message.room_id)
        .subquery()
    )
    rows = db.session.execute(
        select(Message.id, Message.room_id, Message.body, Message.internal).join(
            newest, newest.c.id == Message.id
        )
    )
    return {
        room_id: {"message_id": message_id, "internal": internal, "parts": snippet(body, terms)}
        for message_id, room_id, body, internal in rows
    }


def _spans(text: str, terms: list[str]) -> list[tuple[int, int]]:
    """Where `terms` occur in `text`, merged: at the start of a word (as PostgreSQL
    matched them), else anywhere (as SQLite's LIKE did)."""
    spans = []
    for term in terms:
        at_word = [
            m.span() for m in re.finditer(r"(?<![^\W_])" + re.escape(term), text, re.IGNORECASE)
        ]
        spans += at_word or [m.span() for m in re.finditer(re.escape(term), text, re.IGNORECASE)]
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def snippet(body: str, terms: list[str]) -> list[str]:
    """Up to SNIPPET code points of `body` around its first match, as alternating
    parts: plain text, matched text, plain text, … (always an odd count; the matched
    parts are the odd-numbered ones). A cut is shown with "…"."""
    text = " ".join(body.split())  # one line, as a list row shows it
    spans = _spans(text, terms)
    start = 0
    if spans and spans[0][0] > LEAD:
        start = spans[0][0] - LEAD
        space = text.find(" ", start, spans[0][0])
        start = space + 1 if space != -1 else start
    end = min(len(text), start + SNIPPET)
    space = text.rfind(" ", start, end) if end < len(text) else -1
    if space > (spans[0][1] if spans else start):
        end = space  # end at a word, but never before the first match
    parts, at = [], start
    for span_start, span_end in spans:
        span_start, span_end = max(span_start, start), min(span_end, end)
        if span_start >= span_end:
            continue
        parts += [text[at:span_start], text[span_start:span_end]]
        at = span_end
    parts.append(text[at:end])
    if start > 0:
        parts[0] = "…" + parts[0]
    if end < len(text):
        parts[-1] += "…"
    return parts
