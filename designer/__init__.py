"""The designer: FastAPI app, JSON API under /api, server-rendered pages."""
