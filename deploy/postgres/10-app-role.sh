#!/bin/sh
# Run once by the postgres image when its volume is new: the role the services connect as. `lobby migrate
# --grant lobby_app` (compose's migrate, as the owner) lets it read the records and insert new ones, and nothing
# else, so the insert-only triggers cannot be dropped through it.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    -v password="${LOBBY_APP_PASSWORD:-lobby_app}" <<'SQL'
CREATE ROLE lobby_app LOGIN PASSWORD :'password';
SQL
