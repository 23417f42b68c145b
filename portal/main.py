"""ASGI entry point for uvicorn: `portal.main:app`."""

from portal.app import create_app

app = create_app()
