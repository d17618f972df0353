"""The records of closed business days, kept in a relational database for as long as the branch keeps history.

Redis holds the live path and a short window (today and `redis_days`); a closed day is copied here by the
pager's archive job (services/pager/archive.py), and read back by the daily report, the trends page and
`lobby export`.

- `tables`: the tables, as SQLAlchemy Core describes them for queries;
- `migrations`: how a database gets them (Alembic), with the constraints and the triggers that keep records
  insert-only;
- `database`: the database a process is told of (`DATABASE_URL`, SQLite under var/ by default), and migrating it;
- `export`: a stretch of days' pages, tickets or pauses as CSV or JSON Lines, for auditors.
"""
