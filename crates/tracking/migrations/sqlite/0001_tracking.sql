-- Tracking schema (SQLite). Timestamps are milliseconds since the epoch.
CREATE TABLE experiments (
    experiment_id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    artifact_location TEXT NOT NULL,
    lifecycle_stage TEXT NOT NULL,
    creation_time INTEGER NOT NULL,
    last_update_time INTEGER NOT NULL
);
CREATE TABLE experiment_tags (
    experiment_id INTEGER NOT NULL REFERENCES experiments(experiment_id),
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (experiment_id, key)
);
CREATE TABLE runs (
    run_uuid TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    experiment_id INTEGER NOT NULL REFERENCES experiments(experiment_id),
    user_id TEXT NOT NULL,
    status TEXT NOT NULL,
    start_time INTEGER NOT NULL,
    end_time INTEGER,
    artifact_uri TEXT NOT NULL,
    lifecycle_stage TEXT NOT NULL,
    deleted_time INTEGER
);
CREATE INDEX runs_experiment ON runs (experiment_id, start_time);
-- NaN cannot be stored in a SQLite REAL (it becomes NULL), so it is kept as value 0 + is_nan 1.
CREATE TABLE metrics (
    run_uuid TEXT NOT NULL REFERENCES runs(run_uuid),
    key TEXT NOT NULL,
    value REAL NOT NULL,
    is_nan INTEGER NOT NULL,
    timestamp INTEGER NOT NULL,
    step INTEGER NOT NULL,
    model_id TEXT,
    dataset_name TEXT,
    dataset_digest TEXT,
    PRIMARY KEY (run_uuid, key, step, timestamp, value, is_nan)
);
CREATE TABLE latest_metrics (
    run_uuid TEXT NOT NULL REFERENCES runs(run_uuid),
    key TEXT NOT NULL,
    value REAL NOT NULL,
    is_nan INTEGER NOT NULL,
    timestamp INTEGER NOT NULL,
    step INTEGER NOT NULL,
    PRIMARY KEY (run_uuid, key)
);
CREATE TABLE params (
    run_uuid TEXT NOT NULL REFERENCES runs(run_uuid),
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (run_uuid, key)
);
CREATE TABLE tags (
    run_uuid TEXT NOT NULL REFERENCES runs(run_uuid),
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (run_uuid, key)
);
CREATE TABLE datasets (
    dataset_uuid TEXT PRIMARY KEY,
    experiment_id INTEGER NOT NULL REFERENCES experiments(experiment_id),
    name TEXT NOT NULL,
    digest TEXT NOT NULL,
    source_type TEXT NOT NULL,
    source TEXT NOT NULL,
    schema TEXT,
    profile TEXT,
    UNIQUE (experiment_id, name, digest)
);
CREATE TABLE run_inputs (
    input_uuid TEXT PRIMARY KEY,
    run_uuid TEXT NOT NULL REFERENCES runs(run_uuid),
    dataset_uuid TEXT NOT NULL REFERENCES datasets(dataset_uuid),
    UNIQUE (run_uuid, dataset_uuid)
);
CREATE TABLE input_tags (
    input_uuid TEXT NOT NULL REFERENCES run_inputs(input_uuid),
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (input_uuid, key)
);
