//! Free text as features: a tokenizer and a TF-IDF vocabulary, learned on the training rows
//! and stored in the model, so that prediction turns text into exactly the numbers training
//! saw.
//!
//! Tokens are scikit-learn's `TfidfVectorizer` default: the text lowercased, then every run
//! of two or more word characters (`(?u)\b\w\w+\b`: letters, digits and `_`, by Unicode's
//! properties, which `char::is_alphanumeric` gives without a crate; it also counts combining
//! vowel signs of scripts such as Devanagari or Thai as letters, where Python's `\w` splits
//! at them). A row's value for term `t` is `(1 + ln tf) · idf(t)` (sublinear term frequency),
//! with the smoothed `idf(t) = 1 + ln((1 + n) / (1 + df))`, and the row's vector is scaled
//! to unit length.
//! Sublinear counts (here) and a lighter penalty on words (`LinearParams::text_alpha`) are the
//! departures from scikit-learn's defaults, chosen on the e-mail set (bench/README.md, "Text
//! classifier").
//!
//! Terms seen in fewer than [`MIN_DF`] training rows are dropped, and at most [`MAX_TERMS`]
//! are kept (the most frequent by document count, ties by the term — scikit-learn's
//! `max_features` ranks by total count instead), so a model stays a few megabytes whatever
//! the corpus. Terms not in the vocabulary are ignored at prediction.

use std::collections::{BTreeMap, HashMap};
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

/// Terms must occur in at least this many training rows.
pub(crate) const MIN_DF: usize = 1;
/// At most this many terms per text column.
pub(crate) const MAX_TERMS: usize = 200_000;

/// The tokens of `text`, lowercased, in order (see the module docs).
pub fn tokens(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|t| t.chars().nth(1).is_some())
        .map(str::to_lowercase)
}

/// A fitted TF-IDF vocabulary for one text column.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Tfidf {
    /// Terms, sorted; a term's position is its feature index.
    terms: Vec<String>,
    /// Inverse document frequency of each term.
    idf: Vec<f64>,
    #[serde(skip)]
    index: OnceLock<HashMap<String, u32>>,
}

impl PartialEq for Tfidf {
    fn eq(&self, other: &Tfidf) -> bool {
        self.terms == other.terms && self.idf == other.idf
    }
}

/// Sorted (term index, count) pairs of one text, terms unknown to `lookup` skipped.
fn counts(text: &str, lookup: impl Fn(&str) -> Option<u32>) -> Vec<(u32, u32)> {
    let mut ids: Vec<u32> = tokens(text).filter_map(|t| lookup(&t)).collect();
    ids.sort_unstable();
    let mut out: Vec<(u32, u32)> = Vec::with_capacity(ids.len());
    for id in ids {
        match out.last_mut() {
            Some((last, n)) if *last == id => *n += 1,
            _ => out.push((id, 1)),
        }
    }
    out
}

impl Tfidf {
    /// Learns the vocabulary and document frequencies from the rows (`None` = no text).
    pub(crate) fn fit(rows: &[Option<String>]) -> Tfidf {
        let mut df: HashMap<String, usize> = HashMap::new();
        for text in rows.iter().flatten() {
            let mut seen: Vec<String> = tokens(text).collect();
            seen.sort_unstable();
            seen.dedup();
            for t in seen {
                *df.entry(t).or_default() += 1;
            }
        }
        let mut kept: Vec<(String, usize)> = df.into_iter().filter(|(_, d)| *d >= MIN_DF).collect();
        if kept.len() > MAX_TERMS {
            kept.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            kept.truncate(MAX_TERMS);
        }
        let sorted: BTreeMap<String, usize> = kept.into_iter().collect();
        let n = rows.len() as f64;
        let idf = sorted.values().map(|&d| ((1.0 + n) / (1.0 + d as f64)).ln() + 1.0).collect();
        Tfidf { terms: sorted.into_keys().collect(), idf, index: OnceLock::new() }
    }

    /// Number of features (terms).
    pub(crate) fn width(&self) -> usize {
        self.terms.len()
    }

    /// The term of feature `i`.
    pub(crate) fn term(&self, i: usize) -> &str {
        &self.terms[i]
    }

    fn index(&self) -> &HashMap<String, u32> {
        self.index.get_or_init(|| self.terms.iter().enumerate().map(|(i, t)| (t.clone(), i as u32)).collect())
    }

    /// The unit-length TF-IDF vector of one text: sorted (feature, value) pairs.
    pub(crate) fn transform(&self, text: Option<&str>) -> Vec<(u32, f64)> {
        let Some(text) = text else { return Vec::new() };
        let index = self.index();
        let mut v: Vec<(u32, f64)> = counts(text, |t| index.get(t).copied())
            .into_iter()
            .map(|(i, tf)| (i, (1.0 + f64::from(tf).ln()) * self.idf[i as usize]))
            .collect();
        let norm = v.iter().map(|(_, x)| x * x).sum::<f64>().sqrt();
        if norm > 0.0 {
            for (_, x) in &mut v {
                *x /= norm;
            }
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_runs_of_two_or_more_word_characters_lowercased() {
        let t: Vec<String> = tokens("Free $$$ CASH!! a I'm e-mail_2 Ünïcode 12 x").collect();
        assert_eq!(t, ["free", "cash", "mail_2", "ünïcode", "12"]);
    }

    #[test]
    fn vectors_are_sublinear_smoothed_and_unit_length() {
        let rows = vec![Some("spam spam eggs".to_string()), Some("eggs ham".to_string()), None];
        let v = Tfidf::fit(&rows);
        assert_eq!(v.terms, ["eggs", "ham", "spam"]);
        // n = 3; df: eggs 2, ham 1, spam 1.
        let idf = |df: f64| (4.0 / (1.0 + df)).ln() + 1.0;
        assert_eq!(v.idf, vec![idf(2.0), idf(1.0), idf(1.0)]);
        let x = v.transform(Some("SPAM spam eggs unknown"));
        let (e, s) = (idf(2.0), (1.0 + 2f64.ln()) * idf(1.0));
        let norm = (e * e + s * s).sqrt();
        assert_eq!(x.len(), 2);
        assert!((x[0].1 - e / norm).abs() < 1e-15 && x[0].0 == 0);
        assert!((x[1].1 - s / norm).abs() < 1e-15 && x[1].0 == 2);
        assert!(v.transform(None).is_empty());
        assert!(v.transform(Some("nothing known")).is_empty());
    }
}
