//! What the demo runs: a model, its first training data, the traffic before and after the
//! drift, and the labels that arrive — the California housing regressor (embedded data,
//! simulated drift) or the spam classifier (the SpamAssassin e-mails' two periods, a natural
//! drift).

use anyhow::{bail, Context as _};
use rand::RngExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Rows of text with their header; `text[j]` when column `j` holds a value that is not a
/// number (sent as V2 `BYTES`, else `FP64`).
pub struct Rows {
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
    pub text: Vec<bool>,
}

impl Rows {
    fn new(header: Vec<String>, rows: Vec<Vec<String>>) -> Rows {
        let text = (0..header.len()).map(|j| rows.iter().any(|r| r[j].parse::<f64>().is_err())).collect();
        Rows { header, rows, text }
    }

    /// A CSV file's complete rows (production requests are complete); gzip when it ends in .gz.
    fn read(path: &Path) -> anyhow::Result<Rows> {
        let reader = training::data::open(path).with_context(|| format!("reading {}", path.display()))?;
        let mut r = csv::Reader::from_reader(reader);
        let header: Vec<String> = r.headers()?.iter().map(str::to_string).collect();
        let mut rows = Vec::new();
        for rec in r.records() {
            let rec = rec.with_context(|| format!("reading {}", path.display()))?;
            if rec.iter().all(|f| !f.is_empty()) {
                rows.push(rec.iter().map(str::to_string).collect());
            }
        }
        Ok(Rows::new(header, rows))
    }

    fn column(&self, name: &str, path: &Path) -> anyhow::Result<usize> {
        self.header
            .iter()
            .position(|h| h == name)
            .with_context(|| format!("{}: no column '{name}' (columns: {})", path.display(), self.header.join(", ")))
    }

    /// The rows `keep` selects, with the columns `columns`.
    fn project(&self, columns: &[usize], keep: impl Fn(&[String]) -> bool) -> Rows {
        Rows::new(
            columns.iter().map(|&j| self.header[j].clone()).collect(),
            self.rows.iter().filter(|r| keep(r)).map(|r| columns.iter().map(|&j| r[j].clone()).collect()).collect(),
        )
    }

    /// Writes the rows as CSV (every field quoted: e-mail bodies hold bare carriage returns).
    pub fn write(&self, path: &Path) -> anyhow::Result<()> {
        let mut w = csv::WriterBuilder::new().quote_style(csv::QuoteStyle::Always).from_path(path)?;
        w.write_record(&self.header)?;
        for r in &self.rows {
            w.write_record(r)?;
        }
        w.flush()?;
        Ok(())
    }
}

/// One demo scenario.
pub struct Scenario {
    pub name: &'static str,
    pub model: String,
    pub target: String,
    pub experiment: String,
    /// v1's training data, and the loop's reference.
    pub reference: PathBuf,
    /// Traffic before the drift, and after.
    pub normal: Arc<Rows>,
    pub drifted: Arc<Rows>,
    /// Labelled rows (features and target) that arrive with the drift.
    pub labels: Rows,
    pub task: learn::Task,
    pub spec: learn::ModelSpec,
    pub text_columns: Option<Vec<String>>,
    pub positive_label: Option<String>,
    /// Lines of the pipeline file's `[drift]` and `[retrain]` tables besides the common ones.
    pub drift_toml: String,
    pub retrain_toml: String,
    /// Requests to send before each cycle.
    pub normal_requests: u64,
    pub drifted_requests: u64,
    /// What the drift is, for the progress line.
    pub drift_note: String,
    /// What v1 is, for the progress line.
    pub model_note: &'static str,
}

const HOUSING_TARGET: &str = "median_house_value";

/// The simulated drift (docs/loop.md): richer, more crowded districts, and prices up 25%.
fn shift(header: &[String], row: &[String]) -> Vec<String> {
    header
        .iter()
        .zip(row)
        .map(|(h, v)| {
            let x: f64 = v.parse().unwrap_or(f64::NAN);
            match h.as_str() {
                "median_income" => format!("{}", x * 1.5),
                "population" => format!("{}", (x * 1.4).round()),
                "housing_median_age" => format!("{}", x + 10.0),
                HOUSING_TARGET => format!("{}", (x * 1.25).round()),
                _ => v.clone(),
            }
        })
        .collect()
}

/// California housing: v1 on the data as it is; the traffic then shifts (income ×1.5,
/// population ×1.4, age +10) and 4,000 labelled shifted rows arrive, prices up 25%.
pub fn housing(data: &Path) -> anyhow::Result<Scenario> {
    let rows = Rows::read(data)?;
    rows.column(HOUSING_TARGET, data).context("the housing scenario needs the California housing columns")?;
    let drifted = Rows::new(rows.header.clone(), rows.rows.iter().map(|r| shift(&rows.header, r)).collect());
    let mut rng = learn::rng(99);
    let labelled = (0..4000).map(|_| drifted.rows[rng.random_range(0..drifted.rows.len())].clone()).collect();
    Ok(Scenario {
        name: "housing",
        model: "california-housing-model".into(),
        target: HOUSING_TARGET.into(),
        experiment: "california-housing".into(),
        reference: data.to_path_buf(),
        labels: Rows::new(rows.header.clone(), labelled),
        normal: Arc::new(rows),
        drifted: Arc::new(drifted),
        task: learn::Task::Regression,
        spec: learn::ModelSpec::Gbm(learn::GbmParams { seed: 42, ..learn::GbmParams::default() }),
        text_columns: None,
        positive_label: None,
        drift_toml: "psi_threshold = 0.2\ndrift_share = 0.3\nmin_rows = 500\n".into(),
        retrain_toml: format!("target = \"{HOUSING_TARGET}\"\n"),
        normal_requests: 1500,
        drifted_requests: 800,
        drift_note: "injecting drift (median_income ×1.5, population ×1.4, age +10; prices +25%); \
                     4000 labelled drifted rows arrive"
            .into(),
        model_note: "gradient boosting, rounds chosen by early stopping",
    })
}

/// The spam classifier on the SpamAssassin e-mails: v1 (TF-IDF + logistic regression) on
/// three quarters of period 1 (2002, 15% spam), the other quarter being the normal traffic;
/// the traffic then moves to period 2 (2003: half spam, new campaigns), and every other
/// period-2 e-mail arrives labelled. The pipeline's trigger is prediction drift.
pub fn spam(data: &Path, work: &Path) -> anyhow::Result<Scenario> {
    let all = Rows::read(data)?;
    let [subject, body, label, period] =
        ["subject", "body", "label", "period"].map(|c| all.column(c, data)).map(|r| r.ok());
    let (Some(subject), Some(body), Some(label), Some(period)) = (subject, body, label, period) else {
        bail!(
            "{}: the spam scenario needs the SpamAssassin e-mails (columns subject, body, label, period): \
             ../shared/datasets/spam_assassin/emails.csv.gz",
            data.display()
        );
    };
    let in_period = |p: &'static str| move |r: &[String]| r[period] == p;
    let earlier = all.project(&[subject, body, label], in_period("1"));
    let later = all.project(&[subject, body, label], in_period("2"));
    if earlier.rows.len() < 8 || later.rows.is_empty() {
        bail!("{}: the spam scenario needs e-mails of both periods (1 and 2)", data.display());
    }
    // Three of every four period-1 e-mails train v1; the fourth are the normal traffic, new to it.
    let split = |keep: bool| {
        let rows = earlier.rows.iter().enumerate().filter(|(i, _)| (i % 4 == 3) == keep).map(|(_, r)| r.clone());
        Rows::new(earlier.header.clone(), rows.collect())
    };
    let (reference, normal) = (split(false), split(true));
    let reference_csv = work.join("spam-period1.csv");
    reference.write(&reference_csv)?;
    let labels = Rows::new(later.header.clone(), later.rows.iter().step_by(2).cloned().collect());
    Ok(Scenario {
        name: "spam",
        model: "spam-classifier".into(),
        target: "label".into(),
        experiment: "spam".into(),
        reference: reference_csv,
        normal: Arc::new(normal),
        drifted: Arc::new(later),
        labels,
        task: learn::Task::BinaryClassification,
        spec: learn::ModelSpec::Linear(learn::LinearParams { seed: 42, ..learn::LinearParams::default() }),
        text_columns: Some(vec!["subject".into(), "body".into()]),
        positive_label: Some("spam".into()),
        drift_toml: "min_rows = 300\ntriggers = [\"prediction\"]\n".into(),
        retrain_toml: "target = \"label\"\ntask = \"classification\"\ntext_columns = [\"subject\", \"body\"]\n\
                       positive_label = \"spam\"\n"
            .into(),
        normal_requests: 600,
        drifted_requests: 600,
        drift_note: "traffic moves to period 2 (2003: half spam, new campaigns); every other period-2 e-mail \
                     arrives labelled"
            .into(),
        model_note: "TF-IDF + logistic regression on three quarters of period 1",
    })
}
