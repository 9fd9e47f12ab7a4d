"""Commands: `flask --app wsgi create-admin`, `delete-customer`, `demo-accounts`,
`seed-scale`, `sites`, `worker` and `mail-inbound`."""

from __future__ import annotations

import json
import time

import click
from flask import Flask, current_app
from flask.cli import with_appcontext

from .errors import ChatError
from .extensions import db
from .services.users import get_user_by_email, register_user

DEMO_ACCOUNTS = (
    # role, name, email, password: for development only (never created in production)
    ("admin", "Ada Admin", "admin@example.com", "admin-demo-pass"),
    ("agent", "Ben Agent", "ben@example.com", "ben-demo-pass"),  # a teammate to assign to
    ("customer", "Carl Customer", "carl@example.com", "carl-demo-pass"),
    ("customer", "Cleo Customer", "cleo@example.com", "cleo-demo-pass"),
)


def register_commands(app: Flask) -> None:
    app.cli.add_command(create_admin)
    app.cli.add_command(delete_customer)
    app.cli.add_command(demo_accounts)
    app.cli.add_command(seed_scale)
    app.cli.add_command(sites)
    app.cli.add_command(worker)
    app.cli.add_command(mail_inbound)


@click.command("create-admin")
@with_appcontext
@click.option("--email", required=True, help="The admin's login email.")
@click.option("--name", required=True, help="The name customers see.")
@click.option(
    "--password",
    prompt=True,
    hide_input=True,
    confirmation_prompt=True,
    help="Asked for when left out (8 characters or more).",
)
def create_admin(email: str, name: str, password: str) -> None:
    """Create an admin account (admins cannot sign up on the site)."""
    try:
        user = register_user({"email": email, "name": name, "password": password}, role="admin")
    except ChatError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(f"Created admin {user.email} (id {user.id}).")


@click.command("delete-customer")
@with_appcontext
@click.option("--email", help="A customer who signed up here: their login email.")
@click.option("--site", "site_key", help="A customer from a site's widget: the site's key.")
@click.option("--external-id", help="With --site: the business's own id for the customer.")
@click.option("--yes", is_flag=True, help="Do not ask before deleting.")
def delete_customer(
    email: str | None, site_key: str | None, external_id: str | None, yes: bool
) -> None:
    """Delete a customer for good (a request to be forgotten): their account, their
    conversation and every file in it, the team's replies included. Their sessions end
    first, and every server process closes their sockets before anything is deleted.
    Team members are deactivated instead, in the inbox's Team dialog."""
    from sqlalchemy import func, select

    from .models import ChatRoom, Message, Site, User
    from .services.tokens import end_all_sessions
    from .services.users import delete_user
    from .sockets.housekeeping import REVOKED_EVERY

    if bool(email) == bool(site_key or external_id) or bool(site_key) != bool(external_id):
        raise click.UsageError("Name the customer by --email, or by --site and --external-id.")
    if email:
        user = get_user_by_email(email)
    else:
        user = db.session.scalar(
            select(User)
            .join(Site, Site.id == User.site_id)
            .where(Site.key == site_key, User.external_id == external_id)
        )
    if user is None:
        hint = " (a widget customer is named by --site and --external-id)" if email else ""
        raise click.ClickException(f"No such customer{hint}.")
    if user.role != "customer":
        raise click.ClickException(
            f"{user.email} is on the team ({user.role}): deactivate them in the inbox's Team "
            "dialog instead."
        )
    count = db.session.scalar(
        select(func.count(Message.id))
        .join(ChatRoom, ChatRoom.id == Message.room_id)
        .where(ChatRoom.customer_id == user.id)
    )
    messages = {0: "no messages", 1: "1 message"}.get(count, f"{count} messages")
    who = f"{user.name} <{user.email}>" if user.email else user.name
    if not yes:
        question = f"Delete {who} (id {user.id}) and their conversation ({messages})?"
        click.confirm(question, abort=True)
    user_id = user.id
    db.session.rollback()  # nothing held while the deletion runs
    # A server process without Redis hears of ended sessions by looking every
    # REVOKED_EVERY seconds, and closes the sockets then: their rows must still be there.
    end_all_sessions(user_id)
    click.echo("Signed out everywhere; waiting for the servers to close their sockets…")
    time.sleep(3 * REVOKED_EVERY)
    delete_user(user_id)
    click.echo(f"Deleted {who} (id {user_id}), their conversation and its files.")


@click.command("demo-accounts")
@with_appcontext
def demo_accounts() -> None:
    """Create (once) and print the demo accounts; development only."""
    if current_app.config["ENV_NAME"] != "development":
        raise click.ClickException("Demo accounts exist only with APP_CONFIG=development.")
    click.echo("Demo accounts (development only):")
    for role, name, email, password in DEMO_ACCOUNTS:
        if get_user_by_email(email) is None:
            register_user({"email": email, "name": name, "password": password}, role=role)
        click.echo(f"  {role:<8}  {email:<20}  password: {password}")
    from .widget.demo import demo_shop_site

    site = demo_shop_site()
    click.echo(
        f"The demo shop, with the widget on it: {site.origin_list[0]}/demo-shop "
        f"(site key {site.key})"
    )


@click.command("seed-scale")
@with_appcontext
@click.option("--rooms", default=10_000, show_default=True, help="Customers, each with a room.")
@click.option("--messages", default=1_000_000, show_default=True, help="Messages in all.")
@click.option("--big-room", default=100_000, show_default=True, help="Messages in room 1.")
def seed_scale(rooms: int, messages: int, big_room: int) -> None:
    """Fill an empty PostgreSQL database with a large inbox, for benchmarks only.

    Customers get one shared password ("scale-password"); room 1 holds --big-room
    messages and the rest are spread over the other rooms. Runs as set-based SQL."""
    from sqlalchemy import text

    from .extensions import db
    from .services.users import hash_password

    if db.engine.dialect.name != "postgresql":
        raise click.ClickException("seed-scale needs PostgreSQL.")
    if db.session.execute(text("SELECT count(*) FROM chat_rooms")).scalar():
        raise click.ClickException("The database already holds rooms; use an empty one.")
    params = {
        "rooms": rooms,
        "rest": max(messages - big_room, 0),
        "big": big_room,
        "hash": hash_password("scale-password"),
    }
    for sql in SEED_SQL:
        db.session.execute(text(sql), params)
    db.session.commit()
    # As autovacuum would in time: statistics, and the search indexes' pending entries
    # merged (a GIN index scans its unmerged entries one by one).
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE")
    click.echo(f"Seeded {rooms} rooms and {messages} messages.")


FIRST_NAMES = """
Ada Amir Ana Anton Aiko Bea Ben Carla Chen Dana Diego Elif Emma Farah Felix Gita Hana Hugo
Ines Ivan Jana Jonas Kai Kofi Lara Leon Lina Luca Maya Mateo Nadia Nils Noor Omar Olga
Paul Priya Quinn Rosa Sami Sara Tariq Tess Uma Vera Wen Yara Yusuf Zoe Zain
""".split()  # noqa: SIM905 (a list of words reads better so)
FAMILY_NAMES = """
Abbott Adeyemi Alvarez Andersen Arslan Bauer Becker Bianchi Blom Brandt Brooks Byrne
Carter Castillo Chavez Cho Costa Cruz Dahl Diaz Dubois Duarte Eriksen Evans Falk Fischer
Fontaine Fraser Garcia Gomez Gonzalez Gray Greco Haas Hansen Hart Hayes Herrera Hoffmann
Holm Horvat Hughes Ibrahim Ito Jansen Jensen Jimenez Johansson Kaur Keller Khan Kim Klein
Koch Kowalski Kruger Lam Lang Larsen Laurent Lee Lehmann Lindqvist Lopez Lund Madsen
Marino Martin Meyer Molina Moreau Morales Mori Muller Murphy Nagy Nakamura Navarro Nguyen
Nielsen Novak Nowak Okafor Olsen Ortiz Ozturk Park Patel Pereira Perez Petrov Pham Popescu
Quinn Ramos Reyes Ricci Rios Rossi Roth Ruiz Sanchez Santos Sato Schmidt Schneider Schulz
Silva Singh Sorensen Suzuki Svensson Tanaka Torres Tran Vargas Vega Vogel Wagner Walsh
Wang Weber Wolf Wong Yamamoto Yilmaz Young Zhang Ziegler Zimmermann Acosta Baker Bergstrom
Bosch Campbell Dijkstra Engel Ferrari Gallo Hallberg Ivanova Jovanovic Kovacs Lindgren
Mendes Nilsson Ochoa Pacheco Quintero Rahman Sandoval Toth Ueda Valdez Wiklund Xu Yoon
Zapata Adler Barros Cohen Delgado Eklund Fuentes Guerrero Hedlund Iqbal Jaramillo Kessler
Lozano Maldonado Nunez Osei Paredes Quiroga Rojas Salazar Tavares Urbina Vasquez Weiss
Yates Zamora Aguilar Bravo Cordero Dominguez Espinoza Figueroa Galvan Ibarra Juarez Leal
Mejia Montoya Noguera Orozco Pineda Quezada Sousa
""".split()  # noqa: SIM905 (a list of words reads better so)


F, L = len(FIRST_NAMES), len(FAMILY_NAMES)


def _sql_words(words: list[str]) -> str:
    return ", ".join(f"'{w}'" for w in words)


SEED_SQL = [
    # Names as an inbox has them: 50 first names × 200 family names, each pair once
    # (10,000 customers), so a search for one customer's name is as selective as it
    # would be in a real inbox.
    f"""INSERT INTO users (email, name, password_hash, role, created_at)
       SELECT lower(f || '.' || l || '.' || n) || '@example.com', f || ' ' || l, :hash,
              'customer', now() - interval '30 days'
         FROM generate_series(1, :rooms) AS n,
              LATERAL (SELECT (ARRAY[{_sql_words(FIRST_NAMES)}])[1 + n % {F}] AS f,
                              (ARRAY[{_sql_words(FAMILY_NAMES)}])[1 + (n / {F}) % {L}] AS l) w""",
    """INSERT INTO chat_rooms (customer_id, status, created_at, last_activity_at,
                               admin_unread, customer_unread)
       SELECT id, 'open', created_at, created_at, 0, 0 FROM users WHERE role = 'customer'
        ORDER BY id""",
    """INSERT INTO messages (room_id, author_id, body, created_at)
       SELECT r.id, r.customer_id, 'scale message ' || n,
              now() - interval '30 days' + n * interval '1 second'
         FROM generate_series(1, :big) AS n
         JOIN (SELECT id, customer_id FROM chat_rooms ORDER BY id LIMIT 1) r ON true""",
    """INSERT INTO messages (room_id, author_id, body, created_at)
       SELECT r.id, r.customer_id, 'scale message ' || n,
              now() - interval '29 days' + n * interval '1 second'
         FROM generate_series(1, :rest) AS n
         JOIN chat_rooms r ON r.id = 2 + (n % greatest(:rooms - 1, 1))""",
    """UPDATE chat_rooms SET
         last_message_id = m.last_id, last_activity_at = m.last_at, admin_unread = m.n
         FROM (SELECT room_id, max(id) AS last_id, max(created_at) AS last_at, count(*) AS n
                 FROM messages GROUP BY room_id) m
        WHERE chat_rooms.id = m.room_id""",
]


@click.group("sites")
def sites() -> None:
    """The businesses' sites that carry the widget (docs/PROTOCOL.md, "The widget")."""


def _site_json(site) -> str:
    return json.dumps(
        {
            "site_key": site.key,
            "name": site.name,
            "origins": site.origin_list,
            "login_url": site.login_url,
            "created_at": site.created_at.isoformat(),
            "removed": site.removed_at is not None,
        },
        ensure_ascii=False,
    )


@sites.command("add")
@with_appcontext
@click.option("--name", required=True, help="The site's name, as the team sees it.")
@click.option(
    "--origin",
    "origins",
    multiple=True,
    required=True,
    help="An origin that may frame the widget (https://shop.example); repeat for more.",
)
@click.option("--login-url", default=None, help="Where the site's visitors log in.")
def sites_add(name: str, origins: tuple[str, ...], login_url: str | None) -> None:
    """Register a site; prints {"site_key", "secret"} (the secret is shown only now)."""
    from .services.sites import add_site

    try:
        site, secret = add_site(name, list(origins), login_url)
    except ChatError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(json.dumps({"site_key": site.key, "secret": secret}))


@sites.command("list")
@with_appcontext
def sites_list() -> None:
    """Every site, one JSON object a line (secrets are never printed again)."""
    from .services.sites import list_sites

    for site in list_sites():
        click.echo(_site_json(site))


@sites.command("rotate-secret")
@with_appcontext
@click.argument("key")
def sites_rotate_secret(key: str) -> None:
    """A new secret for the site; the old one stops working, and its customers' sessions
    end. Prints {"site_key", "secret"}."""
    from .services.sites import rotate_secret

    try:
        secret = rotate_secret(key)
    except ChatError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(json.dumps({"site_key": key, "secret": secret}))


@sites.command("remove")
@with_appcontext
@click.argument("key")
def sites_remove(key: str) -> None:
    """Stop the site's widget: identities refused, its customers' sessions ended. Their
    conversations stay."""
    from .services.sites import remove_site

    try:
        remove_site(key)
    except ChatError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(f"Removed {key}.")


@click.command("worker")
@click.option("--threads", default=4, show_default=True, help="jobs run at once")
@with_appcontext
def worker(threads: int) -> None:
    """Run the jobs (emails, delayed checks) in a process of their own: Huey's consumer.

    For several web processes: give each CHAT_JOBS_IN_PROCESS=0 and run one or more
    workers beside them. It needs REDIS_URL: the queue, and which sockets are open,
    are shared through Redis."""
    app = current_app
    if not app.config["REDIS_URL"]:
        raise click.ClickException(
            "flask worker needs REDIS_URL (the queue and who is online are shared there). "
            "Without it, `python wsgi.py` runs the jobs itself."
        )
    jobs = app.extensions["chat_jobs"]
    click.echo(f"Jobs worker: {threads} threads, queue {app.config['CHAT_JOBS_NAME']!r} in Redis")
    jobs.huey.create_consumer(workers=threads, worker_type="thread", periodic=True).run()


@click.command("mail-inbound")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=2525, show_default=True, type=int)
@with_appcontext
def mail_inbound(host: str, port: int) -> None:
    """Take customers' replies by email: an SMTP server (aiosmtpd) for
    MAIL_INBOUND_DOMAIN. Point the domain's MX (or a relay) here. With REDIS_URL the
    posted replies reach the inbox live."""
    import signal
    import threading

    from aiosmtpd.controller import Controller
    from flask.cli import ScriptInfo

    from .mail.inbound import Handler

    # The app object itself: the handler runs on the SMTP server's threads, outside
    # this command's context (ScriptInfo hands back the app `--app` loaded).
    app = click.get_current_context().ensure_object(ScriptInfo).load_app()
    if not app.config["MAIL_INBOUND_DOMAIN"]:
        raise click.ClickException("mail-inbound needs MAIL_INBOUND_DOMAIN (the reply addresses')")
    controller = Controller(
        Handler(app),
        hostname=host,
        port=port,
        data_size_limit=app.config["CHAT_INBOUND_MAX_BYTES"],
        server_hostname=app.config["MAIL_INBOUND_DOMAIN"],
    )
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    controller.start()
    click.echo(f"Taking mail for @{app.config['MAIL_INBOUND_DOMAIN']} on {host}:{port}", err=True)
    stop.wait()
    controller.stop()
