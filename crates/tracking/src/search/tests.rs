//! The filter and `order_by` parsers on MLflow's own examples, edge cases and hostile input.

use super::*;

fn c(entity: Entity, key: &str, op: Op, value: Value) -> Comparison {
    Comparison { entity, key: key.to_string(), op, value }
}

fn s(v: &str) -> Value {
    Value::Str(v.to_string())
}

fn list(items: &[&str]) -> Value {
    Value::List(items.iter().map(|i| i.to_string()).collect())
}

fn check_filter(input: &str, expected: &[Comparison]) {
    match parse_filter(input) {
        Ok(filter) => assert_eq!(filter.clauses, expected, "input: {input:?}"),
        Err(e) => panic!("input {input:?} failed: {e}"),
    }
}

/// The error must quote the whole filter and contain every `needle`.
fn check_filter_err(input: &str, needles: &[&str]) {
    let Err(SearchError::Invalid(msg)) = parse_filter(input) else {
        panic!("input {input:?} should fail, got {:?}", parse_filter(input));
    };
    let prefix = format!("Invalid filter '{input}': ");
    assert!(msg.starts_with(&prefix), "message {msg:?} for {input:?}");
    for needle in needles {
        assert!(msg.contains(needle), "{msg:?} lacks {needle:?}");
    }
}

/// [`check_filter_err`] for each `(input, needles)`.
fn check_filter_errs(cases: &[(&str, &[&str])]) {
    for (input, needles) in cases {
        check_filter_err(input, needles);
    }
}

fn check_order(input: &str, entity: Entity, key: &str, ascending: bool) {
    let expected = OrderBy { entity, key: key.to_string(), ascending, dataset: None };
    assert_eq!(parse_order_by(input), Ok(expected), "input: {input:?}");
}

fn check_order_err(input: &str, needle: &str) {
    let Err(SearchError::Invalid(msg)) = parse_order_by(input) else {
        panic!("order_by {input:?} should fail");
    };
    let prefix = format!("Invalid order_by clause '{input}': ");
    assert!(msg.starts_with(&prefix), "message {msg:?} for {input:?}");
    assert!(msg.contains(needle), "{msg:?} lacks {needle:?}");
}

use Entity::*;

#[test]
fn empty_filter_is_empty() {
    for input in ["", " ", "\t\n  \r"] {
        assert_eq!(parse_filter(input), Ok(Filter::default()));
    }
}

#[test]
fn symbol_comparators() {
    for (sym, op) in
        [("=", Op::Eq), ("!=", Op::Ne), ("<>", Op::Ne), (">", Op::Gt), (">=", Op::Ge), ("<", Op::Lt), ("<=", Op::Le)]
    {
        check_filter(&format!("metrics.acc {sym} 1"), &[c(Metric, "acc", op, Value::Num(1.0))]);
    }
}

#[test]
fn comparators_without_spaces() {
    check_filter("metrics.a>=0.5", &[c(Metric, "a", Op::Ge, Value::Num(0.5))]);
    check_filter("params.x='y'", &[c(Param, "x", Op::Eq, s("y"))]);
    check_filter("params.x<>'y'", &[c(Param, "x", Op::Ne, s("y"))]);
    check_filter("metrics.a<-1", &[c(Metric, "a", Op::Lt, Value::Num(-1.0))]);
}

#[test]
fn entity_prefix_aliases() {
    for (prefix, entity) in [
        ("metrics", Metric),
        ("metric", Metric),
        ("params", Param),
        ("param", Param),
        ("parameters", Param),
        ("parameter", Param),
        ("tags", Tag),
        ("tag", Tag),
        ("attributes", Attribute),
        ("attribute", Attribute),
        ("attr", Attribute),
        ("run", Attribute),
        ("datasets", Dataset),
        ("dataset", Dataset),
    ] {
        check_filter(&format!("{prefix}.k = 'v'"), &[c(entity, "k", Op::Eq, s("v"))]);
    }
}

#[test]
fn entity_prefix_is_case_insensitive_key_is_not() {
    check_filter("METRICS.Acc > 1", &[c(Metric, "Acc", Op::Gt, Value::Num(1.0))]);
    check_filter("Params.LR = '1'", &[c(Param, "LR", Op::Eq, s("1"))]);
    check_filter("TaGs.X = 'v'", &[c(Tag, "X", Op::Eq, s("v"))]);
}

#[test]
fn keys_may_contain_dots() {
    check_filter("params.a.b = 'x'", &[c(Param, "a.b", Op::Eq, s("x"))]);
    check_filter("tags.mlflow.runName = 'r'", &[c(Tag, "mlflow.runName", Op::Eq, s("r"))]);
}

#[test]
fn bare_keys_with_special_characters() {
    for key in ["a_b", "a-b", "a/b", "ns:key", "v2", "ключ", "a;b"] {
        check_filter(&format!("params.{key} = 'x'"), &[c(Param, key, Op::Eq, s("x"))]);
    }
}

#[test]
fn backticked_keys() {
    check_filter("tags.`my key` = 'v'", &[c(Tag, "my key", Op::Eq, s("v"))]);
    check_filter("params.`a = 'b'` = 'v'", &[c(Param, "a = 'b'", Op::Eq, s("v"))]);
    check_filter("tags.`a``b` = 'v'", &[c(Tag, "a`b", Op::Eq, s("v"))]);
}

#[test]
fn double_quoted_keys() {
    check_filter("metrics.\"my metric\" < 2", &[c(Metric, "my metric", Op::Lt, Value::Num(2.0))]);
    check_filter("tags.\"a.b c\" = \"v\"", &[c(Tag, "a.b c", Op::Eq, s("v"))]);
}

#[test]
fn identifiers_without_prefix_are_attributes() {
    for key in ["name", "run_name", "creation_time", "version_number", "run_id"] {
        check_filter(&format!("{key} = 'x'"), &[c(Attribute, key, Op::Eq, s("x"))]);
    }
}

#[test]
fn backticked_key_without_prefix_is_attribute() {
    check_filter("`name` = 'x'", &[c(Attribute, "name", Op::Eq, s("x"))]);
    check_filter("`run name` LIKE 'x%'", &[c(Attribute, "run name", Op::Like, s("x%"))]);
}

#[test]
fn unknown_entity_prefix() {
    let expected = "Invalid entity type 'foo'. Valid values are \
                    ['metric', 'parameter', 'tag', 'attribute', 'dataset']";
    check_filter_errs(&[
        ("foo.bar = 'x'", &[expected]),
        ("metrics.a > 1 AND foo.`x` = 'y'", &["Invalid entity type 'foo'"]),
        (".x = 'y'", &["Invalid entity type ''"]),
    ]);
}

#[test]
fn missing_or_badly_quoted_key_after_prefix() {
    check_filter_errs(&[
        ("tags. = 'x'", &["missing key after 'tags.'"]),
        ("tags. `k` = 'x'", &["missing key after 'tags.'"]),
        ("tags.'k' = 'x'", &["backticks or double quotes"]),
        ("tags.`` = 'x'", &["empty quoted key"]),
        ("`` = 'x'", &["empty quoted key"]),
    ]);
}

#[test]
fn string_values_in_either_quote() {
    check_filter("params.x = 'a b'", &[c(Param, "x", Op::Eq, s("a b"))]);
    check_filter("params.x = \"a b\"", &[c(Param, "x", Op::Eq, s("a b"))]);
    check_filter("params.x = ''", &[c(Param, "x", Op::Eq, s(""))]);
    check_filter("params.x = \"it's\"", &[c(Param, "x", Op::Eq, s("it's"))]);
    check_filter("params.x = '日本 ✓'", &[c(Param, "x", Op::Eq, s("日本 ✓"))]);
}

#[test]
fn doubled_quote_is_one_quote() {
    check_filter("params.x = 'it''s'", &[c(Param, "x", Op::Eq, s("it's"))]);
    check_filter("params.x = \"a\"\"b\"", &[c(Param, "x", Op::Eq, s("a\"b"))]);
    check_filter("params.x = 'a'''", &[c(Param, "x", Op::Eq, s("a'"))]);
    check_filter("params.x = 'a'' OR ''1''=''1'", &[c(Param, "x", Op::Eq, s("a' OR '1'='1"))]);
}

#[test]
fn backslash_escapes() {
    check_filter(r"params.x = 'it\'s'", &[c(Param, "x", Op::Eq, s("it's"))]);
    check_filter(r#"params.x = "a\"b""#, &[c(Param, "x", Op::Eq, s("a\"b"))]);
    check_filter(r"params.x = 'a\\b'", &[c(Param, "x", Op::Eq, s(r"a\b"))]);
    check_filter(r"params.x = 'a\%b'", &[c(Param, "x", Op::Eq, s(r"a\%b"))]);
}

#[test]
fn numbers() {
    for (text, n) in [
        ("1", 1.0),
        ("-1", -1.0),
        ("+2", 2.0),
        ("0.25", 0.25),
        (".5", 0.5),
        ("3.", 3.0),
        ("1e-3", 1e-3),
        ("-2.5E+2", -250.0),
        ("1e5", 1e5),
    ] {
        check_filter(&format!("metrics.m = {text}"), &[c(Metric, "m", Op::Eq, Value::Num(n))]);
    }
}

#[test]
fn unquoted_words_are_not_values() {
    for word in ["abc", "1.2.3", "0x10", "inf", "nan", "1e", "-", "1e+", "TRUE", "5;"] {
        check_filter_err(
            &format!("params.x = {word}"),
            &["expected a quoted string or a number", &format!("found '{word}'")],
        );
    }
    check_filter_err("params.x = `a`", &["expected a quoted string or a number"]);
}

#[test]
fn metric_with_string_value_is_not_validated() {
    check_filter("metrics.m > '1'", &[c(Metric, "m", Op::Gt, s("1"))]);
}

#[test]
fn like_and_ilike() {
    check_filter("tags.t LIKE '%a_'", &[c(Tag, "t", Op::Like, s("%a_"))]);
    check_filter("name ILIKE \"%X%\"", &[c(Attribute, "name", Op::ILike, s("%X%"))]);
    check_filter("tags.t like 'a'", &[c(Tag, "t", Op::Like, s("a"))]);
    check_filter("tags.t iLiKe 'a'", &[c(Tag, "t", Op::ILike, s("a"))]);
}

#[test]
fn like_requires_a_string() {
    check_filter_errs(&[
        ("tags.t LIKE 5", &["'LIKE' requires a quoted string", "'5'"]),
        ("tags.t ilike -1.5", &["'ilike' requires a quoted string"]),
        ("tags.t LIKE abc", &["expected a quoted string after 'LIKE'"]),
        ("tags.t LIKE", &["missing value after 'LIKE'"]),
    ]);
}

#[test]
fn in_and_not_in_lists() {
    check_filter("tags.t IN ('a')", &[c(Tag, "t", Op::In, list(&["a"]))]);
    check_filter("tags.t in ('a','b' , \"c d\")", &[c(Tag, "t", Op::In, list(&["a", "b", "c d"]))]);
    check_filter("datasets.name NOT IN ('x', 'y''z')", &[c(Dataset, "name", Op::NotIn, list(&["x", "y'z"]))]);
    check_filter("run_id not   in('r1')", &[c(Attribute, "run_id", Op::NotIn, list(&["r1"]))]);
}

#[test]
fn in_list_errors() {
    check_filter_errs(&[
        ("tags.t IN ()", &["must contain at least one value"]),
        ("tags.t IN (1, 2)", &["only quoted strings", "found '1'"]),
        ("tags.t IN ('a', 2)", &["only quoted strings", "found '2'"]),
        ("tags.t IN ('a',)", &["only quoted strings", "found ')'"]),
        ("tags.t IN ('a'", &["missing ')'"]),
        ("tags.t IN ('a',", &["missing ')'"]),
        ("tags.t IN ('a' 'b')", &["expected ',' or ')'"]),
        ("tags.t IN 'a'", &["expected a parenthesised list", "after 'IN'"]),
        ("tags.t IN 5", &["expected a parenthesised list"]),
        ("tags.t NOT IN", &["missing value after 'NOT IN'"]),
        ("tags.t IN (('a'))", &["only quoted strings", "found '('"]),
    ]);
}

#[test]
fn is_null_and_is_not_null() {
    check_filter("tags.t IS NULL", &[c(Tag, "t", Op::IsNull, Value::Null)]);
    check_filter("tags.t is not null", &[c(Tag, "t", Op::IsNotNull, Value::Null)]);
    check_filter(
        "params.p Is Null AND tags.t IS NOT NULL",
        &[c(Param, "p", Op::IsNull, Value::Null), c(Tag, "t", Op::IsNotNull, Value::Null)],
    );
}

#[test]
fn is_errors() {
    check_filter_errs(&[
        ("tags.t IS", &["expected NULL or NOT NULL after IS"]),
        ("tags.t IS NOT", &["expected NULL or NOT NULL after IS"]),
        ("tags.t IS 'x'", &["expected NULL or NOT NULL after IS"]),
        ("tags.t IS NULL 'x'", &["unexpected trailing text ''x''"]),
        ("tags.t NOT LIKE 'x'", &["expected IN after NOT"]),
        ("tags.t NOT", &["expected IN after NOT"]),
    ]);
}

#[test]
fn and_chains() {
    check_filter(
        "metrics.a > 1 AND params.b = 'x' and tags.c != 'y' aNd name LIKE 'z%'",
        &[
            c(Metric, "a", Op::Gt, Value::Num(1.0)),
            c(Param, "b", Op::Eq, s("x")),
            c(Tag, "c", Op::Ne, s("y")),
            c(Attribute, "name", Op::Like, s("z%")),
        ],
    );
    check_filter(
        "  tags.t IN ('a')\n\tAND\nmetrics.m<=2  ",
        &[c(Tag, "t", Op::In, list(&["a"])), c(Metric, "m", Op::Le, Value::Num(2.0))],
    );
}

#[test]
fn or_is_rejected() {
    let msg = "OR is not supported; combine conditions with AND";
    for input in [
        "metrics.a > 1 OR metrics.b > 2",
        "metrics.a > 1 or metrics.b > 2",
        "params.x = 'a' Or params.y = 'b' AND tags.t = 'c'",
        "OR",
    ] {
        check_filter_err(input, &[msg]);
    }
}

#[test]
fn or_inside_strings_and_keys_is_fine() {
    check_filter("params.x = 'a OR b'", &[c(Param, "x", Op::Eq, s("a OR b"))]);
    check_filter("params.or = 'x'", &[c(Param, "or", Op::Eq, s("x"))]);
    check_filter("tags.`or` = 'x'", &[c(Tag, "or", Op::Eq, s("x"))]);
}

#[test]
fn parentheses_are_rejected() {
    check_filter_errs(&[
        ("(metrics.a > 1)", &["parentheses for grouping are not supported"]),
        ("metrics.a > 1 AND (params.b = 'x')", &["parentheses for grouping are not supported"]),
        ("params.b = ('x')", &["only allowed around the list after IN"]),
        ("metrics.a > 1)", &["unexpected trailing text ')'"]),
    ]);
}

#[test]
fn missing_value() {
    assert_eq!(
        parse_filter("metrics.a >"),
        Err(SearchError::Invalid("Invalid filter 'metrics.a >': missing value after '>'".to_string()))
    );
    check_filter_errs(&[
        ("params.x =", &["missing value after '='"]),
        ("params.x <>  ", &["missing value after '<>'"]),
    ]);
}

#[test]
fn missing_or_bad_comparator() {
    check_filter_errs(&[
        ("metrics.a", &["missing comparison operator after 'metrics.a'"]),
        ("tags.`a b`", &["missing comparison operator after 'tags.`a b`'"]),
        ("metrics.a 1", &["expected a comparison operator", "found '1'"]),
        ("params.x == 'a'", &["expected a quoted string or a number", "'='"]),
        ("params.x ! 'a'", &["unexpected character '!'"]),
        ("params.x =< 'a'", &["expected a quoted string or a number"]),
        ("params.x CONTAINS 'a'", &["found 'CONTAINS'"]),
    ]);
}

#[test]
fn missing_identifier() {
    check_filter_errs(&[
        ("= 'x'", &["expected an identifier, found '='"]),
        ("'x' = 'x'", &["expected an identifier, found ''x''"]),
        ("metrics.a > 1 AND", &["missing condition after 'AND'"]),
        ("AND metrics.a > 1", &["expected a comparison operator"]),
        ("metrics.a > 1 AND AND metrics.b > 1", &["expected a comparison operator"]),
    ]);
}

#[test]
fn trailing_garbage_and_injection_attempts() {
    check_filter_errs(&[
        ("params.x = 'a'; DROP TABLE runs; --", &["unexpected trailing text '; DROP TABLE runs; --'"]),
        ("params.x = 'a' --", &["unexpected trailing text '--'"]),
        ("params.x = 'a' params.y = 'b'", &["conditions must be joined with AND"]),
        ("params.x = 'a' 'b'", &["unexpected trailing text ''b''"]),
        ("tags.t IN ('a'); --", &["unexpected trailing text '; --'"]),
    ]);
}

#[test]
fn unterminated_quotes() {
    check_filter_errs(&[
        ("params.x = 'abc", &["missing closing '"]),
        ("params.x = \"abc", &["missing closing \""]),
        ("tags.`abc = 'x'", &["missing closing `"]),
        (r"params.x = 'abc\'", &["missing closing '"]),
        ("params.x = 'a''", &["missing closing '"]),
    ]);
}

#[test]
fn never_panics_on_hostile_input() {
    use rand_pcg::rand_core::{Rng as _, SeedableRng as _};
    let alphabet: Vec<char> = "ab.`'\"()=,!<> \t\\;-0e9ORANDINOTISNULL\0é日🦀\u{202e}".chars().collect();
    let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(0x2545_f491_4f6c_dd1d);
    for _ in 0..5000 {
        let len = (rng.next_u64() >> 59) as usize + 1;
        let input: String = (0..len).map(|_| alphabet[(rng.next_u64() >> 33) as usize % alphabet.len()]).collect();
        let _ = parse_filter(&input);
        let _ = parse_order_by(&input);
    }
    for input in ["\0", "params.\0 = '\0'", "'", "\"", "`", "(", ")", ",", "!", "é.x = 1"] {
        let _ = parse_filter(input);
        let _ = parse_order_by(input);
    }
    check_filter("params.\0 = '\0'", &[c(Param, "\0", Op::Eq, s("\0"))]);
}

#[test]
fn long_inputs() {
    let long_value = "x".repeat(200_000);
    check_filter(&format!("params.p = '{long_value}'"), &[c(Param, "p", Op::Eq, s(&long_value))]);
    let chain = |n| vec!["metrics.m > 1"; n].join(" AND ");
    assert_eq!(parse_filter(&chain(MAX_FILTER_CLAUSES)).unwrap().clauses.len(), MAX_FILTER_CLAUSES);
    assert!(parse_filter(&chain(MAX_FILTER_CLAUSES + 1)).unwrap_err().to_string().contains("at most 500"));
    assert!(parse_filter(&chain(10_000)).unwrap_err().to_string().starts_with("Error on parsing filter 'metrics"));
    let in_list = format!("params.p IN ({})", vec!["'v'"; 6_000].join(", "));
    assert!(parse_filter(&in_list).is_err());
    assert!(parse_filter(&"(".repeat(100_000)).is_err());
    assert!(parse_order_by(&"a".repeat(100_000)).is_ok());
}

#[test]
fn error_display_is_the_message() {
    let err = parse_filter("foo.bar = 1").unwrap_err();
    assert_eq!(
        err.to_string(),
        "Invalid filter 'foo.bar = 1': Invalid entity type 'foo'. Valid values are \
         ['metric', 'parameter', 'tag', 'attribute', 'dataset']"
    );
}

#[test]
fn order_by_basic() {
    check_order("metrics.rmse DESC", Metric, "rmse", false);
    check_order("attributes.start_time", Attribute, "start_time", true);
    check_order("name", Attribute, "name", true);
    check_order("version_number DESC", Attribute, "version_number", false);
    check_order("params.a.b ASC", Param, "a.b", true);
    check_order("datasets.digest", Dataset, "digest", true);
    check_order("  tags.t  ", Tag, "t", true);
}

#[test]
fn order_by_direction_is_case_insensitive() {
    for (dir, asc) in [("asc", true), ("Asc", true), ("desc", false), ("DeSc", false)] {
        check_order(&format!("metrics.m {dir}"), Metric, "m", asc);
    }
}

#[test]
fn order_by_quoted_keys() {
    check_order("params.`lr rate` ASC", Param, "lr rate", true);
    check_order("tags.\"a b\" desc", Tag, "a b", false);
    check_order("`start time` DESC", Attribute, "start time", false);
    check_order("METRICS.`m`", Metric, "m", true);
}

#[test]
fn order_by_errors() {
    check_order_err("", "must not be empty");
    check_order_err("   ", "must not be empty");
    check_order_err("metrics.m DESC x", "unexpected trailing text 'x'");
    check_order_err("metrics.m ASC DESC", "unexpected trailing text 'DESC'");
    check_order_err("metrics.m DOWN", "expected ASC or DESC after 'metrics.m', found 'DOWN'");
    check_order_err("metrics.m = 1", "expected ASC or DESC");
    check_order_err("foo.bar", "Invalid entity type 'foo'");
    check_order_err("tags.", "missing key after 'tags.'");
    check_order_err("'name'", "expected an identifier");
    check_order_err("tags.`a", "missing closing `");
    check_order_err("name, metrics.m", "expected ASC or DESC");
}

// ---- properties ------------------------------------------------------------------------

mod props {
    use super::*;
    use proptest::prelude::*;

    /// Quotes `s` so that the tokenizer gives `s` back: the quote doubled, backslashes
    /// escaped (a backslash before the quote would otherwise escape it).
    fn quote(s: &str, q: char) -> String {
        let body = s.replace('\\', "\\\\").replace(q, &format!("{q}{q}"));
        format!("{q}{body}{q}")
    }

    fn entity() -> impl Strategy<Value = (&'static str, Entity)> {
        prop_oneof![
            Just(("metrics.", Metric)),
            Just(("metric.", Metric)),
            Just(("params.", Param)),
            Just(("parameter.", Param)),
            Just(("tags.", Tag)),
            Just(("TAGS.", Tag)),
            Just(("attributes.", Attribute)),
            Just(("run.", Attribute)),
            Just(("datasets.", Dataset)),
            Just(("", Attribute)),
        ]
    }

    /// An identifier as text and what it parses to: bare, `backticked` or "double quoted".
    fn identifier() -> impl Strategy<Value = (String, Entity, String)> {
        (entity(), 0..3u8, "[a-z_][a-z0-9_]{0,8}", "[a-z_][a-z0-9_.]{0,8}", "\\PC{1,10}").prop_filter_map(
            "a bare attribute named OR",
            |((prefix, entity), style, plain, dotted, any)| match style {
                0 if prefix.is_empty() => (!plain.eq_ignore_ascii_case("or")).then(|| (plain.clone(), entity, plain)),
                0 => Some((format!("{prefix}{dotted}"), entity, dotted)),
                1 => Some((format!("{prefix}{}", quote(&any, '`')), entity, any)),
                _ if prefix.is_empty() => None,
                _ => Some((format!("{prefix}{}", quote(&any, '"')), entity, any)),
            },
        )
    }

    /// A comparator as text, and a value of the kind it takes.
    fn condition() -> impl Strategy<Value = (String, Op, Value)> {
        let text = "\\PC{0,12}";
        let num = any::<f64>().prop_filter("finite", |f| f.is_finite());
        prop_oneof![
            (
                prop_oneof![
                    Just(("=", Op::Eq)),
                    Just(("!=", Op::Ne)),
                    Just(("<>", Op::Ne)),
                    Just((">", Op::Gt)),
                    Just((">=", Op::Ge)),
                    Just(("<", Op::Lt)),
                    Just(("<=", Op::Le))
                ],
                num
            )
                .prop_map(|((sym, op), n)| (format!("{sym} {n:?}"), op, Value::Num(n))),
            (
                prop_oneof![
                    Just(("=", Op::Eq)),
                    Just(("!=", Op::Ne)),
                    Just(("LIKE", Op::Like)),
                    Just(("ilike", Op::ILike))
                ],
                text,
                prop_oneof![Just('\''), Just('"')]
            )
                .prop_map(|((sym, op), s, q)| (format!("{sym} {}", quote(&s, q)), op, Value::Str(s))),
            (prop_oneof![Just(("IN", Op::In)), Just(("not in", Op::NotIn))], prop::collection::vec(text, 1..4))
                .prop_map(|((sym, op), items)| {
                    let list = items.iter().map(|i| quote(i, '\'')).collect::<Vec<_>>().join(", ");
                    (format!("{sym} ({list})"), op, Value::List(items))
                }),
            Just(("IS NULL".to_string(), Op::IsNull, Value::Null)),
            Just(("is not null".to_string(), Op::IsNotNull, Value::Null)),
        ]
    }

    fn comparison() -> impl Strategy<Value = (String, Comparison)> {
        (identifier(), condition()).prop_map(|((ident, entity, key), (cond, op, value))| {
            (format!("{ident} {cond}"), Comparison { entity, key, op, value })
        })
    }

    /// Words and symbols of the language, glued into mostly-wrong filters that get past the
    /// tokenizer and reach every branch of the parser.
    fn token_soup() -> impl Strategy<Value = String> {
        let token = prop_oneof![
            Just("metrics.a"),
            Just("params.`p q`"),
            Just("tags.\"t\""),
            Just("attributes.run_name"),
            Just("datasets.name"),
            Just("bogus.x"),
            Just("metrics."),
            Just("run_id"),
            Just("="),
            Just("!="),
            Just("<>"),
            Just("<"),
            Just(">="),
            Just("!"),
            Just("LIKE"),
            Just("ILIKE"),
            Just("IN"),
            Just("NOT"),
            Just("IS"),
            Just("NULL"),
            Just("AND"),
            Just("OR"),
            Just("("),
            Just(")"),
            Just(","),
            Just("'s'"),
            Just("'"),
            Just("\"d\""),
            Just("`b`"),
            Just("``"),
            Just("1.5"),
            Just("-2e3"),
            Just("1e"),
            Just("."),
            Just("ASC"),
            Just("desc"),
            Just("\\"),
            Just("'it''s'"),
            Just("é"),
        ];
        (prop::collection::vec(token, 0..12), prop::collection::vec(prop::bool::ANY, 12)).prop_map(|(ts, spaces)| {
            ts.iter().zip(spaces).map(|(t, sp)| if sp { format!("{t} ") } else { t.to_string() }).collect()
        })
    }

    /// Any text: a filter, or an error that quotes it (or names the limit it broke).
    fn check_any(s: &str) {
        match parse_filter(s) {
            Ok(_) => {}
            Err(SearchError::Invalid(m)) => {
                assert!(m.contains(s) || m.starts_with("Invalid filter: a filter can have at most"), "{m:?}")
            }
        }
        match parse_order_by(s) {
            Ok(o) => assert!(!o.key.is_empty(), "{s:?}"),
            Err(SearchError::Invalid(m)) => assert!(m.contains(s), "{m:?}"),
        }
    }

    proptest! {
        #[test]
        fn any_text_is_a_filter_or_an_error(s in "\\PC{0,200}") {
            check_any(&s);
        }

        #[test]
        fn any_token_soup_is_a_filter_or_an_error(s in token_soup()) {
            check_any(&s);
        }

        /// A filter written from comparisons parses back to them.
        #[test]
        fn generated_filters_parse_back(parts in prop::collection::vec(comparison(), 1..5), and_case in any::<bool>()) {
            let and = if and_case { " AND " } else { " and " };
            let text = parts.iter().map(|(t, _)| t.as_str()).collect::<Vec<_>>().join(and);
            let expected: Vec<Comparison> = parts.into_iter().map(|(_, c)| c).collect();
            prop_assert_eq!(parse_filter(&text), Ok(Filter { clauses: expected }), "{}", text);
        }

        /// An `order_by` clause written from an identifier and a direction parses back to them.
        #[test]
        fn generated_orders_parse_back((ident, entity, key) in identifier(), dir in 0..5usize) {
            let (suffix, ascending) = [("", true), (" ASC", true), (" asc", true), (" DESC", false), (" desc", false)][dir];
            let text = format!("{ident}{suffix}");
            prop_assert_eq!(parse_order_by(&text), Ok(OrderBy { entity, key, ascending, dataset: None }), "{}", text);
        }
    }
}
