//! Text descriptors: the numbers Evidently 0.7.23's cheap text evals derive from each value
//! of a free-text column (`TextLength`, `WordCount`, `SentenceCount`,
//! `NonLetterCharacterPercentage`, `OOVWordsPercentage`), computed per field while a file
//! streams by, so that a text column becomes a handful of numeric columns drift-tested like
//! any other.
//!
//! Each function reproduces the Python of `evidently/legacy/features/*_feature.py` (Python
//! `str` semantics: lengths in code points, `str.isalpha`, `re`'s Unicode `\w` and `\s`). A
//! missing value gives 0 everywhere, as Evidently's `apply` does for `None`/NaN.
//!
//! Out-of-vocabulary words are counted against a [`Vocabulary`] instead of NLTK's English
//! word list: by default the words of the reference data itself (see [`Vocabulary`] for
//! the bounded sketch that holds them and the leave-one-out rule for reference rows).
//!
//! Architecture Invariant: pure functions and one sketch; no I/O, no knowledge of files.

use siphasher::sip::SipHasher13;
use std::hash::Hasher;
use std::sync::atomic::{AtomicU64, Ordering};
use unicode_properties::{GeneralCategoryGroup, UnicodeGeneralCategory};

/// One text descriptor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Descriptor {
    /// Characters (code points), `TextLength`.
    TextLength,
    /// Words made of ASCII letters, `WordCount`.
    WordCount,
    /// Sentences, `SentenceCount`.
    SentenceCount,
    /// Percentage of characters that are neither letters nor spaces, `NonLetterCharacterPercentage`.
    NonLetterCharacterPercentage,
    /// Percentage of words not in the vocabulary, `OOVWordsPercentage`.
    OovWordsPercentage,
}

impl Descriptor {
    /// Every descriptor, in report order.
    pub const ALL: [Descriptor; 5] = [
        Descriptor::TextLength,
        Descriptor::WordCount,
        Descriptor::SentenceCount,
        Descriptor::NonLetterCharacterPercentage,
        Descriptor::OovWordsPercentage,
    ];

    /// The name used in column names (`<column>.<name>`) and the JSON report.
    pub fn name(self) -> &'static str {
        match self {
            Descriptor::TextLength => "text_length",
            Descriptor::WordCount => "word_count",
            Descriptor::SentenceCount => "sentence_count",
            Descriptor::NonLetterCharacterPercentage => "non_letter_character_percentage",
            Descriptor::OovWordsPercentage => "oov_words_percentage",
        }
    }

    /// Evidently's descriptor (class) name.
    pub fn evidently_name(self) -> &'static str {
        match self {
            Descriptor::TextLength => "TextLength",
            Descriptor::WordCount => "WordCount",
            Descriptor::SentenceCount => "SentenceCount",
            Descriptor::NonLetterCharacterPercentage => "NonLetterCharacterPercentage",
            Descriptor::OovWordsPercentage => "OOVWordsPercentage",
        }
    }

    /// Evidently's display name for the descriptor of `column` (`display_name_template`).
    pub fn display_name(self, column: &str) -> String {
        match self {
            Descriptor::TextLength => format!("Text Length for {column}"),
            Descriptor::WordCount => format!("Word Count for {column}"),
            Descriptor::SentenceCount => format!("Sentence Count for {column}"),
            Descriptor::NonLetterCharacterPercentage => format!("Non Letter Character % for {column}"),
            Descriptor::OovWordsPercentage => format!("OOV Words % for {column}"),
        }
    }

    /// The column name of this descriptor of `column`.
    pub fn column_name(self, column: &str) -> String {
        format!("{column}.{}", self.name())
    }

    /// Position in [`Descriptor::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

/// A descriptor value and whether Python produced it as an `int` (which decides the pandas
/// dtype of the descriptor column, and so Evidently's binning of integer columns).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Value {
    /// The number.
    pub x: f64,
    /// Python returned an `int`.
    pub int: bool,
}

impl Value {
    const ZERO: Value = Value { x: 0.0, int: true };

    fn int(n: usize) -> Value {
        Value { x: n as f64, int: true }
    }

    fn float(x: f64) -> Value {
        Value { x, int: false }
    }
}

/// The four vocabulary-free descriptors of a value (`None` = missing), in [`Descriptor::ALL`]
/// order.
pub fn describe(text: Option<&str>) -> [Value; 4] {
    let Some(text) = text else {
        return [Value::ZERO; 4];
    };
    let mut length = 0usize;
    let mut non_letters = 0usize;
    let mut words = 0usize;
    let mut in_word = false;
    let mut sentence_breaks = 0usize;
    // The four characters before the current one, most recent last (NUL before the start).
    let mut prev = ['\0'; 4];
    for c in text.chars() {
        length += 1;
        if !(c == ' ' || is_py_alpha(c)) {
            non_letters += 1;
        }
        // WordCount: `re.sub(r"[^a-zA-Z ]+", "", value).split()` — other characters vanish
        // without ending a word; only a space does.
        if c == ' ' {
            in_word = false;
        } else if c.is_ascii_alphabetic() && !in_word {
            in_word = true;
            words += 1;
        }
        if is_py_space(c) && is_sentence_break(&prev, length - 1) {
            sentence_breaks += 1;
        }
        prev = [prev[1], prev[2], prev[3], c];
    }
    [
        Value::int(length),
        Value::int(words),
        Value::int((sentence_breaks + 1).max(1)),
        Value::float(100.0 * non_letters as f64 / length as f64),
    ]
}

/// `SentenceCount`'s splitting regex `(?<!\w\.\w.)(?<![A-Z][a-z]\.)(?<=\.|\?)\s`, tested at a
/// whitespace character preceded by `prev` (`seen` characters exist before it).
fn is_sentence_break(prev: &[char; 4], seen: usize) -> bool {
    let [p4, p3, p2, p1] = *prev;
    if seen < 1 || !(p1 == '.' || p1 == '?') {
        return false;
    }
    // `\w\.\w.` ending just before: the last `.` matches any character but a newline, and
    // p1 is '.' or '?'.
    if seen >= 4 && is_py_word(p4) && p3 == '.' && is_py_word(p2) {
        return false;
    }
    // `[A-Z][a-z]\.` ending just before.
    !(seen >= 3 && p3.is_ascii_uppercase() && p2.is_ascii_lowercase() && p1 == '.')
}

/// Python's `str.isalpha`: general category Lu, Ll, Lt, Lm or Lo.
fn is_py_alpha(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_alphabetic();
    }
    c.general_category_group() == GeneralCategoryGroup::Letter
}

/// `re`'s Unicode `\w`: alphanumeric (`str.isalnum`) or underscore.
fn is_py_word(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_alphanumeric() || c == '_';
    }
    matches!(c.general_category_group(), GeneralCategoryGroup::Letter | GeneralCategoryGroup::Number)
}

/// `re`'s Unicode `\s` (`str.isspace`): Unicode White_Space plus the ASCII information
/// separators U+001C..U+001F, which Python counts as space.
fn is_py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Calls `f` with each word of `text` as `OOVWordsPercentage` splits it —
/// `re.sub("[^A-Za-z0-9 ]+", "", value).split()`, lowercased — reusing `scratch`.
pub fn for_each_word(text: &str, scratch: &mut Vec<u8>, f: &mut dyn FnMut(&[u8])) {
    scratch.clear();
    for &b in text.as_bytes() {
        if b == b' ' {
            if !scratch.is_empty() {
                f(scratch);
                scratch.clear();
            }
        } else if b.is_ascii_alphanumeric() {
            scratch.push(b.to_ascii_lowercase());
        }
    }
    if !scratch.is_empty() {
        f(scratch);
    }
}

/// The stable 64-bit hash of a (lowercased) word: SipHash-1-3 with fixed keys, so that
/// sketches built by different processes or versions agree and can be merged.
pub fn word_hash(word: &[u8]) -> u64 {
    let mut h = SipHasher13::new_with_keys(0x6661_6374_6f72_7931, 0x766f_6361_6275_6c61);
    h.write(word);
    h.finish()
}

/// How a row's words are judged out of vocabulary.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OovRule {
    /// A word is OOV when no reference row holds it (current rows; any row against a fixed
    /// vocabulary).
    Unseen,
    /// A word is OOV when no *other* reference row holds it (reference rows against the
    /// reference's own vocabulary: leave-one-out, so the reference is not judged by a
    /// vocabulary it wrote itself).
    UnseenElsewhere,
}

/// Per-row scratch for [`oov_percentage`] and [`Vocabulary::add_document`].
#[derive(Debug, Default)]
pub struct WordScratch {
    word: Vec<u8>,
    hashes: Vec<u64>,
}

/// `OOVWordsPercentage` of a value (`None` = missing) against `vocabulary`.
pub fn oov_percentage(text: Option<&str>, vocabulary: &Vocabulary, rule: OovRule, s: &mut WordScratch) -> Value {
    let Some(text) = text else {
        return Value::ZERO;
    };
    let (mut words, mut oov) = (0usize, 0usize);
    let limit = match rule {
        OovRule::Unseen => 0,
        OovRule::UnseenElsewhere => 1,
    };
    for_each_word(text, &mut s.word, &mut |w| {
        words += 1;
        oov += usize::from(vocabulary.documents(word_hash(w)) <= limit);
    });
    if words == 0 {
        return Value::ZERO;
    }
    Value::float(100.0 * oov as f64 / words as f64)
}

/// Hash functions per word in the [`Vocabulary`] sketch.
const HASHES: u32 = 6;

/// The reference vocabulary for out-of-vocabulary words, as a bounded sketch of document
/// frequencies saturating at 2: a counting Bloom filter with 2-bit counters (two bit planes,
/// `2^bits` counters, [`HASHES`] positions per word). A word's count is the minimum over its
/// positions, so it is never under-counted; an unseen word reads as seen only if all its
/// positions collide (probability ≈ fill^6, reported as `false_positive_rate`).
///
/// Insertions are atomic bit operations, so parser threads add to one sketch concurrently
/// and the result does not depend on the order: two sketches of the same size merge
/// exactly ([`Vocabulary::merge`]), which is what sketches gathered from several serving
/// replicas need.
#[derive(Debug)]
pub struct Vocabulary {
    /// Counters ≥ 1.
    once: Vec<AtomicU64>,
    /// Counters ≥ 2.
    twice: Vec<AtomicU64>,
    mask: u64,
    /// Loaded from a word list (every word counts as seen by other rows too).
    fixed: bool,
}

impl Vocabulary {
    /// An empty sketch of `2^bits` counters (`bits` in 10..=32; memory 2^bits / 4 bytes).
    pub fn new(bits: u32) -> Self {
        let bits = bits.clamp(10, 32);
        let words = (1usize << bits) / 64;
        Vocabulary {
            once: (0..words).map(|_| AtomicU64::new(0)).collect(),
            twice: (0..words).map(|_| AtomicU64::new(0)).collect(),
            mask: (1u64 << bits) - 1,
            fixed: false,
        }
    }

    /// A fixed vocabulary: every word of `list` (one or more words a line, split and
    /// lowercased as [`for_each_word`] does), each as if held by many rows.
    pub fn from_word_list(list: &str, bits: u32) -> Self {
        let mut v = Vocabulary::new(bits);
        let mut scratch = Vec::new();
        for line in list.lines() {
            for_each_word(line, &mut scratch, &mut |w| v.add(word_hash(w), 2));
        }
        v.fixed = true;
        v
    }

    /// Whether this is a fixed word list rather than the reference's own words.
    pub fn is_fixed(&self) -> bool {
        self.fixed
    }

    /// The rule for judging rows of the reference (`true`) or current data.
    pub fn rule(&self, reference: bool) -> OovRule {
        if reference && !self.fixed {
            OovRule::UnseenElsewhere
        } else {
            OovRule::Unseen
        }
    }

    fn positions(&self, hash: u64) -> impl Iterator<Item = usize> + '_ {
        let (h1, h2) = (hash & 0xffff_ffff, (hash >> 32) | 1);
        (0..u64::from(HASHES)).map(move |i| {
            let g = h1.wrapping_add(i.wrapping_mul(h2)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
            ((g >> 16) & self.mask) as usize
        })
    }

    /// Counts `n` more documents (0, 1 or 2 matter) holding the word with this hash.
    pub fn add(&self, hash: u64, n: u64) {
        for p in self.positions(hash) {
            let (w, bit) = (p / 64, 1u64 << (p % 64));
            for _ in 0..n.min(2) {
                if self.once[w].fetch_or(bit, Ordering::Relaxed) & bit != 0 {
                    self.twice[w].fetch_or(bit, Ordering::Relaxed);
                }
            }
        }
    }

    /// Adds one document: each distinct word of `text` once.
    pub fn add_document(&self, text: &str, n: u64, s: &mut WordScratch) {
        s.hashes.clear();
        let hashes = &mut s.hashes;
        for_each_word(text, &mut s.word, &mut |w| hashes.push(word_hash(w)));
        s.hashes.sort_unstable();
        s.hashes.dedup();
        for &h in &s.hashes {
            self.add(h, n);
        }
    }

    /// How many documents hold the word (0, 1, or 2 for "two or more"); never too low.
    pub fn documents(&self, hash: u64) -> u8 {
        let mut min = 2u8;
        for p in self.positions(hash) {
            let (w, bit) = (p / 64, 1u64 << (p % 64));
            let c = if self.twice[w].load(Ordering::Relaxed) & bit != 0 {
                2
            } else {
                u8::from(self.once[w].load(Ordering::Relaxed) & bit != 0)
            };
            min = min.min(c);
        }
        min
    }

    /// Adds another sketch of the same size (saturating counter addition).
    pub fn merge(&self, other: &Vocabulary) {
        assert_eq!(self.mask, other.mask, "vocabulary sketches of different sizes");
        for i in 0..self.once.len() {
            let (a1, b1) = (self.once[i].load(Ordering::Relaxed), other.once[i].load(Ordering::Relaxed));
            let b2 = other.twice[i].load(Ordering::Relaxed);
            self.twice[i].fetch_or(b2 | (a1 & b1), Ordering::Relaxed);
            self.once[i].fetch_or(b1, Ordering::Relaxed);
        }
    }

    /// Counters in the sketch.
    pub fn counters(&self) -> u64 {
        self.mask + 1
    }

    /// Share of counters that are non-zero.
    pub fn fill(&self) -> f64 {
        let set: u64 = self.once.iter().map(|w| u64::from(w.load(Ordering::Relaxed).count_ones())).sum();
        set as f64 / self.counters() as f64
    }

    /// Distinct words held, estimated from the fill (Swamidass–Baldi).
    pub fn estimated_words(&self) -> f64 {
        let fill = self.fill();
        if fill >= 1.0 {
            return f64::INFINITY;
        }
        -(self.counters() as f64) / f64::from(HASHES) * (1.0 - fill).ln()
    }

    /// Probability that a word never seen reads as seen (all its positions set).
    pub fn false_positive_rate(&self) -> f64 {
        self.fill().powi(HASHES as i32)
    }

    /// Bytes of memory the sketch holds.
    pub fn bytes(&self) -> u64 {
        (self.once.len() + self.twice.len()) as u64 * 8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str, want: [f64; 4]) {
        let got: Vec<f64> = describe(Some(text)).iter().map(|v| v.x).collect();
        assert_eq!(got, want, "{text:?}");
    }

    /// Expected values printed by Evidently 0.7.23's features (`TextLength().apply` etc.).
    #[test]
    fn descriptors_follow_evidently() {
        check("Hello world. How are you? Fine", [30.0, 6.0, 3.0, 6.666666666666667]);
        check("e-mail me at bob@example.com\nthanks", [35.0, 4.0, 1.0, 11.428571428571429]);
        // "Mr." "e.g." and "U.S." end no sentence.
        check("Mr. Smith went. e.g. this one. U.S. now? Yes", [44.0, 9.0, 4.0, 18.181818181818183]);
        check("Ünïcödé 東京 ½ ok.", [16.0, 2.0, 1.0, 12.5]);
        check(".\t?\nx", [5.0, 1.0, 3.0, 80.0]);
        check("  ", [2.0, 0.0, 1.0, 0.0]);
        assert_eq!(describe(None), [Value::ZERO; 4]);
        assert!(describe(Some("a")).iter().take(3).all(|v| v.int));
        assert!(!describe(Some("a"))[3].int);
    }

    #[test]
    fn python_whitespace_includes_information_separators() {
        for c in ['\u{1c}', '\u{1f}', '\u{85}', '\u{a0}', '\u{2028}', '\u{3000}', '\t'] {
            assert!(is_py_space(c), "{c:?}");
        }
        for c in ['\u{200b}', '\u{180e}', 'a', '_'] {
            assert!(!is_py_space(c), "{c:?}");
        }
        // Combining marks are alphabetic for Rust but not `isalpha` for Python.
        assert!('\u{0345}'.is_alphabetic() && !is_py_alpha('\u{0345}'));
        assert!(is_py_alpha('ß') && is_py_alpha('東') && !is_py_alpha('½') && is_py_word('½'));
    }

    #[test]
    fn words_split_like_the_oov_feature() {
        let mut got = Vec::new();
        let mut scratch = Vec::new();
        for_each_word("Don't  e-mail\nme: HTTP://x.io 42 é", &mut scratch, &mut |w| {
            got.push(String::from_utf8(w.to_vec()).unwrap())
        });
        assert_eq!(got, ["dont", "emailme", "httpxio", "42"]);
    }

    #[test]
    fn oov_against_reference_vocabulary_leaves_the_row_out() {
        let v = Vocabulary::new(16);
        let mut s = WordScratch::default();
        v.add_document("the cat sat", 1, &mut s);
        v.add_document("the dog sat sat", 1, &mut s);
        let mut oov = |t: &str, rule| oov_percentage(Some(t), &v, rule, &mut s).x;
        // Current rows: "bird" was never seen.
        assert_eq!(oov("the bird", OovRule::Unseen), 50.0);
        // Reference row "the cat sat": "cat" is only in this row.
        assert!((oov("the cat sat", OovRule::UnseenElsewhere) - 100.0 / 3.0).abs() < 1e-12);
        assert_eq!(oov("the dog sat sat", OovRule::UnseenElsewhere), 25.0);
        assert_eq!(oov_percentage(Some("!!!"), &v, OovRule::Unseen, &mut s), Value::ZERO);
        assert_eq!(oov_percentage(None, &v, OovRule::Unseen, &mut s), Value::ZERO);
    }

    #[test]
    fn sketches_merge_like_one_sketch() {
        let (a, b, both) = (Vocabulary::new(12), Vocabulary::new(12), Vocabulary::new(12));
        let mut s = WordScratch::default();
        for (i, doc) in ["a b c", "b c d", "c d e", "x"].iter().enumerate() {
            (if i % 2 == 0 { &a } else { &b }).add_document(doc, 1, &mut s);
            both.add_document(doc, 1, &mut s);
        }
        a.merge(&b);
        for w in ["a", "b", "c", "d", "e", "x", "zzz"] {
            assert_eq!(a.documents(word_hash(w.as_bytes())), both.documents(word_hash(w.as_bytes())), "{w}");
        }
        assert_eq!(a.documents(word_hash(b"c")), 2);
        assert_eq!(a.documents(word_hash(b"a")), 1);
        assert_eq!(a.documents(word_hash(b"zzz")), 0);
    }

    #[test]
    fn fill_estimates_distinct_words() {
        let v = Vocabulary::new(20);
        for i in 0..20_000u64 {
            v.add(word_hash(&i.to_le_bytes()), 1);
        }
        let est = v.estimated_words();
        assert!((est - 20_000.0).abs() < 400.0, "{est}");
        assert!(v.false_positive_rate() < 2e-4);
        let fixed = Vocabulary::from_word_list("Hello\nworld's end\n", 12);
        assert!(fixed.is_fixed() && fixed.documents(word_hash(b"worlds")) == 2);
        assert_eq!(fixed.rule(true), OovRule::Unseen);
    }
}
