"""The Flask app factory: settings read once here, blueprints and error handlers registered, no globals."""

from __future__ import annotations

from flask import Flask

from api import ask, events, health, metrics, openapi, products, recommendations, search, widget
from api.auth import bp as tokens_bp
from api.auth import init_auth
from api.cors import init_cors
from api.errors import register_error_handlers
from api.image_slots import init_image_slots
from api.jsonio import StrictJSONProvider
from api.limits import init_limits
from api.metrics import init_metrics
from api.state import init_state
from recommender.config import Settings, load_settings


def create_app(settings: Settings | None = None) -> Flask:
    """A configured app; ``settings`` default to ``load_settings()`` (env + TOML), read once here."""
    settings = settings if settings is not None else load_settings()
    app = Flask(__name__)
    app.json = StrictJSONProvider(app)
    app.config["MAX_CONTENT_LENGTH"] = settings.api.max_content_length
    init_state(app, settings)
    init_auth(app, settings)
    register_error_handlers(app)
    init_metrics(app)
    init_image_slots(app, settings.serve)
    init_cors(app, settings.api.cors_origins)
    for module in (health, search, ask, recommendations, products, events, metrics, openapi, widget):
        app.register_blueprint(module.bp)
    app.register_blueprint(tokens_bp)
    init_limits(app, settings)
    return app
