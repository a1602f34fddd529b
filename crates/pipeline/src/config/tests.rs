use super::*;
use std::path::Path;

fn check_err(text: &str, expect: &str) {
    let err = parse("p", text, Path::new("/base"), &Overrides::default()).unwrap_err();
    assert!(err.contains(expect), "{err:?} should mention {expect:?}");
}

const MIN: &str = "[drift]\nrequest_logs = [\"req\"]\n[rollout]\nserving = \"http://s\"\n";

#[test]
fn defaults_and_relative_paths() {
    let p = parse("p", MIN, Path::new("/base"), &Overrides::default()).unwrap();
    assert_eq!(p.steps, vec![Step::Drift, Step::Retrain, Step::Promote, Step::Rollout]);
    assert_eq!(p.schedule.expression, "0 2 * * *");
    assert_eq!(p.drift.request_logs, vec![PathBuf::from("/base/req")]);
    assert_eq!(p.retrain.alias, "prod");
    assert_eq!(p.retrain.stage.as_deref(), Some("Production"));
    assert_eq!(p.rollout.mode, RolloutMode::HotReload);
    assert_eq!(p.experiment, "drift-monitoring");
}

#[test]
fn overrides_win() {
    let o = Overrides {
        schedule: Some("*/5 * * * *".into()),
        gateway: Some("http://g".into()),
        webhook: Some("http://hook".into()),
        ..Overrides::default()
    };
    let p = parse("p", MIN, Path::new("/base"), &o).unwrap();
    assert_eq!(p.schedule.expression, "*/5 * * * *");
    assert_eq!(p.rollout.mode, RolloutMode::BlueGreen);
    assert_eq!(p.webhook.url.as_deref(), Some("http://hook"));
}

#[test]
fn invalid_files_name_the_problem() {
    check_err("steps = [\"retrain\"]\n", "prefix");
    check_err("[schedule]\ncron = \"every day\"\n", "schedule.cron");
    check_err("[schedule]\ncron = \"61 * * * *\"\n", "not a cron expression");
    check_err("[schedule]\ncron = \"0 0 2 * * *\"\n", "five fields");
    check_err("[schedule]\ntimezone = \"Mars/Olympus\"\n", "schedule.timezone");
    check_err("[drift]\nrequest_logs = []\n", "request_logs");
    check_err(&format!("{MIN}[webhook]\nurl = \"ftp://x\"\n"), "webhook.url");
    check_err(&format!("{MIN}[drift2]\n"), "drift2");
    check_err("[drift]\nrequest_logs = [\"r\"]\n", "rollout.serving");
    check_err("[drift]\nrequest_logs = [\"r\"]\n[rollout]\nmode = \"blue-green\"\n", "rollout.gateway");
    check_err(&format!("{MIN}[retrain]\nmargin = 2\n"), "margin");
    check_err("[drift]\nrequest_logs = [\"r\"]\n[rollout]\nmode = \"canary\"\n", "rollout.gateway");
    check_err(&format!("{MIN}[rollout.canary]\nsteps = [50, 10]\n"), "rollout.canary: steps [50, 10]");
    check_err(&format!("{MIN}[rollout.canary]\nmax_error_rate = 2.0\n"), "rollout.canary: max_error_rate 2");
    check_err(&format!("{MIN}[rollout.canary]\nstep = [5]\n"), "unknown field `step`");
    check_err(&format!("{MIN}[rollout.canary]\nmax_drift_share = 1.5\n"), "rollout.canary: max_drift_share 1.5");
    check_err(&format!("{MIN}[rollout.canary]\nto = \"green\"\n"), "set by the loop");
}

#[test]
fn a_canary_rollout_reads_its_steps_and_limits() {
    let text = "[drift]\nrequest_logs = [\"r\"]\n[rollout]\nmode = \"canary\"\ngateway = \"http://g\"\n\
                [rollout.canary]\nsteps = [10, 50]\ninterval_secs = 2.5\nmax_p99_ms = 40\nmin_requests = 5\n\
                max_drift_share = 0.25\n";
    let p = parse("p", text, Path::new("/base"), &Overrides::default()).unwrap();
    assert_eq!(p.rollout.mode, RolloutMode::Canary);
    let c = &p.rollout.canary;
    assert_eq!(
        (c.steps.as_slice(), c.interval_secs, c.max_p99_ms, c.min_requests),
        (&[10, 50][..], Some(2.5), Some(40.0), Some(5))
    );
    assert_eq!(c.max_drift_share, Some(0.25));
    assert_eq!(c.max_error_rate, None, "the rollout's error_budget fills it in");
}

#[test]
fn schedule_in_a_timezone() {
    let s = Schedule::new("0 2 * * *", "Europe/Paris", Missed::Skip).unwrap();
    // 2026-07-01T00:00:00Z is 02:00 in Paris (CEST): the next run is the next day.
    let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_782_864_000);
    let next = s.next_after(t).unwrap();
    assert_eq!(next.duration_since(t).unwrap(), Duration::from_secs(24 * 3600));
    let utc = Schedule::new("0 2 * * *", "UTC", Missed::Skip).unwrap();
    assert_eq!(utc.next_after(t).unwrap().duration_since(t).unwrap(), Duration::from_secs(2 * 3600));
}

#[test]
fn folder_keeps_last_good_version() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("daily.toml");
    std::fs::write(&file, MIN).unwrap();
    let mut folder = load_dir(dir.path(), &Overrides::default()).unwrap();
    assert!(folder.pipelines.contains_key("daily"));
    std::fs::write(&file, format!("{MIN}\n[schedule]\ncron = \"nope\"\n")).unwrap();
    folder.refresh().unwrap();
    assert_eq!(folder.errors.len(), 1, "{:?}", folder.errors);
    assert!(folder.errors[0].contains("last good version"), "{:?}", folder.errors);
    assert_eq!(folder.pipelines["daily"].schedule.expression, "0 2 * * *");
    std::fs::remove_file(&file).unwrap();
    folder.refresh().unwrap();
    assert!(folder.pipelines.is_empty());
}

mod props {
    //! Pipeline files come from git: any text is a pipeline or an error, never a panic, and
    //! an accepted schedule answers its next time promptly.

    use super::*;
    use proptest::prelude::*;

    /// Lines over the file's real tables and keys, with values of every TOML kind.
    fn line() -> impl Strategy<Value = String> {
        let value = prop_oneof![
            Just("\"req\"".to_string()),
            Just("[\"req\"]".to_string()),
            Just("\"http://s\"".to_string()),
            Just("\"0 2 * * *\"".to_string()),
            Just("\"*/5 * 31 2 *\"".to_string()),
            Just("\"59 23 29 2 1\"".to_string()),
            Just("\"Europe/Paris\"".to_string()),
            Just("[\"drift\", \"retrain\"]".to_string()),
            Just("\"skip\"".to_string()),
            Just("\"blue-green\"".to_string()),
            any::<i64>().prop_map(|i| i.to_string()),
            any::<f64>().prop_map(|f| format!("{f:?}")),
            Just("nan".to_string()),
            Just("-inf".to_string()),
            Just("true".to_string()),
            Just("{ a = 1 }".to_string()),
            "\"[ -~&&[^\"\\\\]]{0,12}\"",
        ];
        let key = prop_oneof![
            Just("steps"),
            Just("cron"),
            Just("timezone"),
            Just("missed"),
            Just("request_logs"),
            Just("reference"),
            Just("columns"),
            Just("psi_threshold"),
            Just("drift_share"),
            Just("min_rows"),
            Just("margin"),
            Just("max_iter"),
            Just("seed"),
            Just("pipeline"),
            Just("stage_timeout_secs"),
            Just("holdout_fraction"),
            Just("mode"),
            Just("serving"),
            Just("gateway"),
            Just("timeout_secs"),
            Just("window_secs"),
            Just("error_budget"),
            Just("url"),
            Just("attempts"),
            Just("cmd"),
            Just("deps"),
            Just("outs"),
            Just("bogus"),
        ];
        prop_oneof![
            prop_oneof![
                Just("[schedule]"),
                Just("[drift]"),
                Just("[retrain]"),
                Just("[rollout]"),
                Just("[webhook]"),
                Just("[stages.train]"),
                Just("[vars]"),
                Just("[[x]]"),
            ]
            .prop_map(str::to_string),
            (key, value).prop_map(|(k, v)| format!("{k} = {v}")),
            "\\PC{0,20}",
        ]
    }

    fn check(text: &str) {
        if let Ok(p) = parse("p", text, Path::new("/nonexistent/factory-props"), &Overrides::default()) {
            let _ = p.schedule.next_after(SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000));
        }
    }

    proptest! {
        #[test]
        fn any_text_is_a_pipeline_or_an_error(text in "\\PC{0,300}") {
            check(&text);
        }

        #[test]
        fn pipeline_shaped_toml_is_a_pipeline_or_an_error(lines in prop::collection::vec(line(), 0..14)) {
            check(&format!("{MIN}\n{}", lines.join("\n")));
            check(&lines.join("\n"));
        }
    }
}

#[test]
fn classifier_settings_and_their_checks() {
    let p = parse("p", MIN, Path::new("/base"), &Overrides::default()).unwrap();
    assert_eq!(p.drift.triggers, vec![Trigger::Data]);
    assert_eq!(p.retrain.task, learn::Task::Regression);
    assert!(!p.retrain.linear);

    let text =
        "[drift]\nrequest_logs = [\"req\"]\ntriggers = [\"prediction\", \"performance\", \"estimated_performance\"]\n\
                labels = \"by-id\"\nperformance_drop = 0.1\n[retrain]\ntask = \"classification\"\n\
                text_columns = [\"subject\", \"body\"]\npositive_label = \"spam\"\n[rollout]\nserving = \"http://s\"\n";
    let p = parse("p", text, Path::new("/base"), &Overrides::default()).unwrap();
    assert_eq!(p.drift.triggers, vec![Trigger::Prediction, Trigger::Performance, Trigger::EstimatedPerformance]);
    assert_eq!(p.drift.labels_by_id, Some(PathBuf::from("/base/by-id")));
    assert_eq!(p.drift.performance_drop, 0.1);
    assert_eq!(p.retrain.task, learn::Task::BinaryClassification);
    assert!(p.retrain.linear, "text columns choose the linear model");
    assert_eq!(p.retrain.text_columns, Some(vec!["subject".to_string(), "body".to_string()]));
    assert_eq!(p.retrain.positive_label.as_deref(), Some("spam"));

    check_err(&format!("{MIN}[retrain]\ntask = \"ranking\"\n"), "task");
    check_err(
        "[drift]\nrequest_logs = [\"r\"]\ntriggers = [\"prediction\"]\n[rollout]\nserving = \"http://s\"\n",
        "classifiers",
    );
    check_err("[drift]\nrequest_logs = [\"r\"]\ntriggers = []\n[rollout]\nserving = \"http://s\"\n", "drift.triggers");
    check_err(
        "[drift]\nrequest_logs = [\"r\"]\ntriggers = [\"performance\"]\n[retrain]\ntask = \"classification\"\n[rollout]\nserving = \"http://s\"\n",
        "drift.labels",
    );
    check_err(&format!("{MIN}[retrain]\npositive_label = \"spam\"\n"), "positive_label");
    check_err(&format!("{MIN}[retrain]\nmetric = \"f1\"\n"), "retrain.metric 'f1'");
    let p = parse("p", &format!("{MIN}[retrain]\nmetric = \"mae\"\n"), Path::new("/b"), &Overrides::default()).unwrap();
    assert_eq!(p.retrain.metric.as_deref(), Some("mae"));
}

#[test]
fn online_drift_takes_replicas_or_a_service_instead_of_request_logs() {
    let text = "[drift]\nsketches = [\"http://serve-0:8080/\", \"http://serve-1:8080\"]\n\
                sketch_service = \"serve-headless.ml.svc:8080\"\n[rollout]\nserving = \"http://s\"\n";
    let p = parse("p", text, Path::new("/base"), &Overrides::default()).unwrap();
    assert!(p.drift.request_logs.is_empty());
    assert_eq!(p.drift.sketches, ["http://serve-0:8080/", "http://serve-1:8080"]);
    assert_eq!(p.drift.sketch_service.as_deref(), Some("serve-headless.ml.svc:8080"));
    // The flags replace the file's replicas.
    let o = Overrides { sketches: vec!["http://x:1".into()], ..Overrides::default() };
    assert_eq!(parse("p", text, Path::new("/base"), &o).unwrap().drift.sketches, ["http://x:1"]);

    let rollout = "[rollout]\nserving = \"http://s\"\n";
    check_err(rollout, "either request_logs");
    check_err(&format!("[drift]\nrequest_logs = [\"r\"]\nsketches = [\"http://a:1\"]\n{rollout}"), "name one");
    check_err(&format!("[drift]\nsketches = [\"serve-0:8080\"]\n{rollout}"), "not an http(s) URL");
    check_err(&format!("[drift]\nsketch_service = \"serve-headless\"\n{rollout}"), "not host:port");
    check_err(
        &format!(
            "[drift]\nsketches = [\"http://a:1\"]\ntriggers = [\"prediction\"]\n[retrain]\ntask = \"classification\"\n\
             target = \"label\"\n{rollout}"
        ),
        "features only",
    );
    check_err(
        &format!(
            "[drift]\nsketches = [\"http://a:1\"]\n[retrain]\npipeline = \"train\"\n[stages.train]\ncmd = \"true\"\n\
             {rollout}"
        ),
        "FACTORY_CURRENT_DATA",
    );
}
