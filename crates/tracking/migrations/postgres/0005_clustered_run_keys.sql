-- The SQLite store turns latest_metrics, params and tags into WITHOUT ROWID tables here
-- (rows kept in the primary-key b-tree). PostgreSQL has no such storage choice and needs no
-- change; this file keeps the two directories numbered alike.
SELECT 1;
