"""The HTML forms; Flask-WTF gives each a CSRF token. Rules live in the services."""

import re

from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, StringField
from wtforms.validators import DataRequired


class LoginForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired()])
    password = PasswordField("Password", validators=[DataRequired()])


class RegisterForm(FlaskForm):
    # No field validators here: the service checks every field at once (services/
    # schemas.py), and `show_errors` puts each rule that failed beside its field.
    name = StringField("Your name")
    email = EmailField("Email")
    password = PasswordField("Password (8 characters or more)")

    EMPTY = {
        "name": "Tell us your name.",
        "email": "Enter your email address.",
        "password": "Choose a password of at least 8 characters.",
    }
    RULES = {
        "is not an email address": "That doesn't look like an email address.",
        "must be at least 8 characters": "Use at least 8 characters.",
        "must not be empty": "Tell us your name.",
    }

    def show_errors(self, fields: dict[str, str]) -> None:
        """The service's rules, said as a person would, each beside its field."""
        for name, rule in fields.items():
            field = getattr(self, name, None)
            if field is None:
                continue
            if not (field.data or "").strip():
                field.errors.append(self.EMPTY.get(name, "Fill this in."))
            elif rule in self.RULES:
                field.errors.append(self.RULES[rule])
            elif match := re.search(r"at most (\d+) characters", rule):
                field.errors.append(f"Use at most {match.group(1)} characters.")
            else:
                field.errors.append(rule[:1].upper() + rule[1:] + ".")


class LogoutForm(FlaskForm):
    """No fields: only the CSRF token, so a foreign page cannot log a user out."""
