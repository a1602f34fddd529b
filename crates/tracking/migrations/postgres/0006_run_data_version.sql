-- A counter bumped by every transaction that changes what a run reads as (its columns, latest
-- metrics, params, tags, inputs, outputs). Writers bump it first, under the run's row lock, so a
-- (run_uuid, data_version) pair names one committed state of the run: searches keep hydrated
-- runs in memory under that pair and only read again the runs whose counter moved.
ALTER TABLE runs ADD COLUMN data_version BIGINT NOT NULL DEFAULT 0;
