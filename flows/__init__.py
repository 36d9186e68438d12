"""Prefect flows: scheduled retraining and its stages as tasks.

Prefect's local server pings its makers when it starts; on an offline machine that logs an ERROR on every run, so
the ping is off unless the user has chosen otherwise.
"""

import os

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
