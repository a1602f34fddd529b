-- A counter bumped by every transaction that changes what a run reads as (its columns, latest
-- metrics, params, tags, inputs, outputs). Writers bump it first, under the run's row lock, so a
-- (run_uuid, data_version) pair names one committed state of the run: searches keep hydrated
-- runs in memory under that pair and only read again the runs whose counter moved.
ALTER TABLE runs ADD COLUMN data_version INTEGER NOT NULL DEFAULT 0;

-- SQLite has one writer at a time, so metric inserts (the log-metric group commit is a single
-- statement) bump the version from a trigger; PostgreSQL writers lock and bump explicitly.
CREATE TRIGGER metrics_data_version AFTER INSERT ON metrics
BEGIN
    UPDATE runs SET data_version = data_version + 1 WHERE run_uuid = NEW.run_uuid;
END;
