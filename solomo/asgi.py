"""ASGI entry point for uvicorn: ``uvicorn solomo.asgi:app``."""

from solomo.app import create_app

app = create_app()
