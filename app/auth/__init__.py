"""Tokens and the login pages: the JSON auth API and the HTML forms that set cookies."""

from .routes import bp

__all__ = ["bp"]
