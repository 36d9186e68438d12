#!/bin/sh
# Runs once, on the first start of an empty Postgres volume (docker-entrypoint-initdb.d):
# creates the Prefect and the MLflow database, both owned by POSTGRES_USER.
set -eu

for db in "${PREFECT_DB_NAME:-prefect}" "${MLFLOW_DB_NAME:-mlflow}"; do
    echo "init-databases: creating database ${db}"
    psql -v ON_ERROR_STOP=1 --username "${POSTGRES_USER}" --dbname postgres \
        -c "CREATE DATABASE \"${db}\" OWNER \"${POSTGRES_USER}\";"
done
