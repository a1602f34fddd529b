-- factory's additions to a database that MLflow created (alembic revision dc11669786a5, MLflow
-- 3.17). Everything here is new: no MLflow table, column, index or row is changed, MLflow's
-- alembic_version stays as it is, and down.sql removes exactly these objects again.
-- Each `-- change:` line is what `factory db upgrade` prints.

-- change: new table factory_schema (which MLflow revision factory adopted, and when)
CREATE TABLE factory_schema (
    adopted_revision TEXT NOT NULL,
    adopted_time BIGINT NOT NULL
);

-- change: new column runs.data_version (default 0), the version factory's run cache checks
ALTER TABLE runs ADD COLUMN data_version BIGINT NOT NULL DEFAULT 0;

-- change: new triggers factory_run_*: every write to a run (by factory or by mlflow server) bumps runs.data_version
CREATE FUNCTION factory_bump_run() RETURNS trigger AS $$
DECLARE
    target TEXT;
BEGIN
    IF TG_TABLE_NAME = 'inputs' THEN
        target := CASE WHEN NEW.destination_type = 'RUN' THEN NEW.destination_id
                       WHEN NEW.source_type = 'RUN_OUTPUT' THEN NEW.source_id END;
    ELSIF TG_OP = 'DELETE' THEN
        target := OLD.run_uuid;
    ELSE
        target := NEW.run_uuid;
    END IF;
    IF target IS NOT NULL THEN
        UPDATE runs SET data_version = data_version + 1 WHERE run_uuid = target;
    END IF;
    RETURN NULL;
END
$$ LANGUAGE plpgsql;
CREATE TRIGGER factory_run_metric AFTER INSERT ON metrics FOR EACH ROW EXECUTE FUNCTION factory_bump_run();
CREATE TRIGGER factory_run_param AFTER INSERT ON params FOR EACH ROW EXECUTE FUNCTION factory_bump_run();
CREATE TRIGGER factory_run_tag AFTER INSERT OR UPDATE OR DELETE ON tags FOR EACH ROW EXECUTE FUNCTION factory_bump_run();
CREATE TRIGGER factory_run_input AFTER INSERT ON inputs FOR EACH ROW EXECUTE FUNCTION factory_bump_run();
CREATE FUNCTION factory_bump_run_columns() RETURNS trigger AS $$
BEGIN
    NEW.data_version := OLD.data_version + 1;
    RETURN NEW;
END
$$ LANGUAGE plpgsql;
CREATE TRIGGER factory_run_columns
BEFORE UPDATE OF name, status, start_time, end_time, lifecycle_stage, deleted_time, artifact_uri, experiment_id ON runs
FOR EACH ROW EXECUTE FUNCTION factory_bump_run_columns();

-- change: new trigger factory_metrics_latest: the database keeps latest_metrics current on every metric insert (MLflow's own update of it still works)
CREATE FUNCTION factory_metrics_latest() RETURNS trigger AS $$
BEGIN
    INSERT INTO latest_metrics (run_uuid, key, value, is_nan, timestamp, step)
    VALUES (NEW.run_uuid, NEW.key, NEW.value, NEW.is_nan, NEW.timestamp, NEW.step)
    ON CONFLICT (key, run_uuid) DO UPDATE SET
        value = excluded.value, is_nan = excluded.is_nan, timestamp = excluded.timestamp, step = excluded.step
    WHERE excluded.step > latest_metrics.step
       OR (excluded.step = latest_metrics.step AND excluded.timestamp > latest_metrics.timestamp)
       OR (excluded.step = latest_metrics.step AND excluded.timestamp = latest_metrics.timestamp
           AND (excluded.is_nan::int < latest_metrics.is_nan::int OR excluded.value > latest_metrics.value));
    RETURN NEW;
END
$$ LANGUAGE plpgsql;
CREATE TRIGGER factory_metrics_latest AFTER INSERT ON metrics FOR EACH ROW EXECUTE FUNCTION factory_metrics_latest();

-- change: new table registry_history (factory's log of alias and stage moves; starts empty)
CREATE TABLE registry_history (
    id BIGSERIAL PRIMARY KEY,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    target TEXT NOT NULL,
    version_before BIGINT,
    version_after BIGINT,
    time BIGINT NOT NULL,
    user_id TEXT
);
CREATE INDEX registry_history_name ON registry_history (name, id);
