# gunicorn -c gunicorn.conf.py our_project.wsgi
bind = "127.0.0.1:8000"  # nginx (TLS) in front
workers = 3
threads = 4  # deauth() makes Open Humans call your webhook during the request
# Longer than OPENHUMANS_TIMEOUT (10 s) and OPENHUMANS_TOKEN_TIMEOUT (20 s), so a slow
# Open Humans ends in our "try again"
# page, not in a killed worker; uploads need more: see "Timeouts" in the docs.
timeout = 120
graceful_timeout = 30
# Fine with django-open-humans: its connection pool is opened lazily and never shared
# with a forked worker.
preload_app = True
