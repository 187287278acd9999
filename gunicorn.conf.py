"""gunicorn reads this from its working directory: its own errors (before Flask) answer in the API's JSON shape."""

from api.gunicorn_errors import install

install()
