"""The HTML forms; Flask-WTF gives each a CSRF token. Rules live in the services."""

from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, StringField
from wtforms.validators import DataRequired


class LoginForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired()])
    password = PasswordField("Password", validators=[DataRequired()])


class RegisterForm(FlaskForm):
    name = StringField("Your name", validators=[DataRequired()])
    email = EmailField("Email", validators=[DataRequired()])
    password = PasswordField("Password (8 characters or more)", validators=[DataRequired()])


class LogoutForm(FlaskForm):
    """No fields: only the CSRF token, so a foreign page cannot log a user out."""
