"""The HTML forms; Flask-WTF gives each a CSRF token. Rules live in the services."""

import re

from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, StringField
from wtforms.validators import DataRequired


class LoginForm(FlaskForm):
    email = EmailField(_l("Email"), validators=[DataRequired(message=_l("Fill this in."))])
    password = PasswordField(_l("Password"), validators=[DataRequired(message=_l("Fill this in."))])


class RegisterForm(FlaskForm):
    # No field validators here: the service checks every field at once (services/
    # schemas.py), and `show_errors` puts each rule that failed beside its field.
    name = StringField(_l("Your name"))
    email = EmailField(_l("Email"))
    password = PasswordField(_l("Password (8 characters or more)"))

    EMPTY = {
        "name": _l("Tell us your name."),
        "email": _l("Enter your email address."),
        "password": _l("Choose a password of at least 8 characters."),
    }
    RULES = {
        "is not an email address": _l("That doesn't look like an email address."),
        "must be at least 8 characters": _l("Use at least 8 characters."),
        "must not be empty": _l("Tell us your name."),
    }

    def show_errors(self, fields: dict[str, str]) -> None:
        """The service's rules, said as a person would, each beside its field."""
        for name, rule in fields.items():
            field = getattr(self, name, None)
            if field is None:
                continue
            if not (field.data or "").strip():
                field.errors.append(str(self.EMPTY.get(name, _l("Fill this in."))))
            elif rule in self.RULES:
                field.errors.append(str(self.RULES[rule]))
            elif match := re.search(r"at most (\d+) characters", rule):
                field.errors.append(
                    gettext("Use at most %(count)s characters.", count=match.group(1))
                )
            else:
                field.errors.append(gettext("Check this field."))


class AcceptInviteForm(RegisterForm):
    """An invitation's form: the email is the invitation's own."""

    email = None


class LogoutForm(FlaskForm):
    """No fields: only the CSRF token, so a foreign page cannot log a user out."""
