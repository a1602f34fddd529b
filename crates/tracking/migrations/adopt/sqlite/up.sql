-- factory's additions to a database that MLflow created (alembic revision dc11669786a5, MLflow
-- 3.17). Everything here is new: no MLflow table, column, index or row is changed, MLflow's
-- alembic_version stays as it is, and down.sql removes exactly these objects again.
-- Each `-- change:` line is what `factory db upgrade` prints.

-- change: new table factory_schema (which MLflow revision factory adopted, and when)
CREATE TABLE factory_schema (
    adopted_revision TEXT NOT NULL,
    adopted_time INTEGER NOT NULL
);

-- change: new column runs.data_version (default 0), the version factory's run cache checks
ALTER TABLE runs ADD COLUMN data_version BIGINT NOT NULL DEFAULT 0;

-- change: new triggers factory_run_*: every write to a run (by factory or by mlflow server) bumps runs.data_version
CREATE TRIGGER factory_run_metric AFTER INSERT ON metrics
BEGIN
    UPDATE runs SET data_version = data_version + 1 WHERE run_uuid = NEW.run_uuid;
END;
CREATE TRIGGER factory_run_param AFTER INSERT ON params
BEGIN
    UPDATE runs SET data_version = data_version + 1 WHERE run_uuid = NEW.run_uuid;
END;
CREATE TRIGGER factory_run_tag_insert AFTER INSERT ON tags
BEGIN
    UPDATE runs SET data_version = data_version + 1 WHERE run_uuid = NEW.run_uuid;
END;
CREATE TRIGGER factory_run_tag_update AFTER UPDATE ON tags
BEGIN
    UPDATE runs SET data_version = data_version + 1 WHERE run_uuid = NEW.run_uuid;
END;
CREATE TRIGGER factory_run_tag_delete AFTER DELETE ON tags
BEGIN
    UPDATE runs SET data_version = data_version + 1 WHERE run_uuid = OLD.run_uuid;
END;
CREATE TRIGGER factory_run_input AFTER INSERT ON inputs WHEN NEW.destination_type = 'RUN'
BEGIN
    UPDATE runs SET data_version = data_version + 1 WHERE run_uuid = NEW.destination_id;
END;
CREATE TRIGGER factory_run_output AFTER INSERT ON inputs WHEN NEW.source_type = 'RUN_OUTPUT'
BEGIN
    UPDATE runs SET data_version = data_version + 1 WHERE run_uuid = NEW.source_id;
END;
CREATE TRIGGER factory_run_columns
AFTER UPDATE OF name, status, start_time, end_time, lifecycle_stage, deleted_time, artifact_uri, experiment_id ON runs
BEGIN
    UPDATE runs SET data_version = data_version + 1 WHERE run_uuid = NEW.run_uuid;
END;

-- change: new trigger factory_metrics_latest: the database keeps latest_metrics current on every metric insert (MLflow's own update of it still works)
CREATE TRIGGER factory_metrics_latest AFTER INSERT ON metrics
BEGIN
    INSERT INTO latest_metrics (run_uuid, key, value, is_nan, timestamp, step)
    VALUES (NEW.run_uuid, NEW.key, NEW.value, NEW.is_nan, NEW.timestamp, NEW.step)
    ON CONFLICT (key, run_uuid) DO UPDATE SET
        value = excluded.value, is_nan = excluded.is_nan, timestamp = excluded.timestamp, step = excluded.step
    WHERE excluded.step > latest_metrics.step
       OR (excluded.step = latest_metrics.step AND excluded.timestamp > latest_metrics.timestamp)
       OR (excluded.step = latest_metrics.step AND excluded.timestamp = latest_metrics.timestamp
           AND (excluded.is_nan < latest_metrics.is_nan OR excluded.value > latest_metrics.value));
END;

-- change: new table registry_history (factory's log of alias and stage moves; starts empty)
CREATE TABLE registry_history (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    target TEXT NOT NULL,
    version_before INTEGER,
    version_after INTEGER,
    time INTEGER NOT NULL,
    user_id TEXT
);
CREATE INDEX registry_history_name ON registry_history (name, id);
