-- The latest value of each metric is kept by the database itself: one INSERT into `metrics`
-- is then the whole write of `log-metric` (no second statement, no explicit transaction).
-- A value replaces the latest when it is later by (step, timestamp), then larger (NaN lowest).
CREATE TRIGGER metrics_latest AFTER INSERT ON metrics
BEGIN
    INSERT INTO latest_metrics (run_uuid, key, value, is_nan, timestamp, step)
    VALUES (NEW.run_uuid, NEW.key, NEW.value, NEW.is_nan, NEW.timestamp, NEW.step)
    ON CONFLICT (run_uuid, key) DO UPDATE SET
        value = excluded.value, is_nan = excluded.is_nan, timestamp = excluded.timestamp, step = excluded.step
    WHERE excluded.step > latest_metrics.step
       OR (excluded.step = latest_metrics.step AND excluded.timestamp > latest_metrics.timestamp)
       OR (excluded.step = latest_metrics.step AND excluded.timestamp = latest_metrics.timestamp
           AND (excluded.is_nan < latest_metrics.is_nan OR excluded.value > latest_metrics.value));
END;
