"""What answers requests: the native handler API (static files and WSGI come later)."""

from .native import HeaderView, NativeApplication, Request, Response

__all__ = ["HeaderView", "NativeApplication", "Request", "Response"]
