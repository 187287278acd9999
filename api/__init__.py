"""HTTP API (Flask app factory, blueprints, widget assets)."""
