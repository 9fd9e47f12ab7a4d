"""Commands: `flask --app wsgi create-admin` and `flask --app wsgi demo-accounts`."""

from __future__ import annotations

import click
from flask import Flask, current_app
from flask.cli import with_appcontext

from .errors import ChatError
from .services.users import get_user_by_email, register_user

DEMO_ACCOUNTS = (
    # role, name, email, password: for development only (never created in production)
    ("admin", "Ada Admin", "admin@example.com", "admin-demo-pass"),
    ("customer", "Carl Customer", "carl@example.com", "carl-demo-pass"),
    ("customer", "Cleo Customer", "cleo@example.com", "cleo-demo-pass"),
)


def register_commands(app: Flask) -> None:
    app.cli.add_command(create_admin)
    app.cli.add_command(demo_accounts)


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
