-- Gives a database adopted by `factory db upgrade` back to MLflow exactly as MLflow's schema
-- has it: drops what up.sql added. Lost: factory's registry_history (alias and stage moves
-- recorded while factory served the database); everything in MLflow's tables stays.

-- change: drop table registry_history (factory's log of alias and stage moves)
DROP TABLE registry_history;

-- change: drop trigger factory_metrics_latest
DROP TRIGGER factory_metrics_latest ON metrics;
DROP FUNCTION factory_metrics_latest();

-- change: drop triggers factory_run_* and column runs.data_version
DROP TRIGGER factory_run_metric ON metrics;
DROP TRIGGER factory_run_param ON params;
DROP TRIGGER factory_run_tag ON tags;
DROP TRIGGER factory_run_input ON inputs;
DROP TRIGGER factory_run_columns ON runs;
DROP FUNCTION factory_bump_run();
DROP FUNCTION factory_bump_run_columns();
ALTER TABLE runs DROP COLUMN data_version;

-- change: drop table factory_schema
DROP TABLE factory_schema;
