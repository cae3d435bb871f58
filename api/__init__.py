"""The Flask API: ``create_app`` builds it, ``api.serve.serve`` runs it under gunicorn."""

from api.app import create_app

__all__ = ["create_app"]
