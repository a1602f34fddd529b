//! One CSV field as pandas reads it: the NA spellings, the boolean spellings, and numbers
//! (a fast path for plain decimals, Rust's parser for the rest), with whether the field is
//! written as an integer.

/// pandas' default `na_values`.
const NA_VALUES: [&[u8]; 19] = [
    b"",
    b"#N/A",
    b"#N/A N/A",
    b"#NA",
    b"-1.#IND",
    b"-1.#QNAN",
    b"-NaN",
    b"-nan",
    b"1.#IND",
    b"1.#QNAN",
    b"<NA>",
    b"N/A",
    b"NA",
    b"NULL",
    b"NaN",
    b"None",
    b"n/a",
    b"nan",
    b"null",
];

pub(crate) fn is_na(field: &[u8]) -> bool {
    field.len() <= 8 && NA_VALUES.contains(&field)
}

pub(crate) fn is_bool(field: &[u8]) -> bool {
    matches!(field, b"True" | b"TRUE" | b"true" | b"False" | b"FALSE" | b"false")
}

/// Powers of ten that are exact in an `f64`.
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20,
    1e21, 1e22,
];

/// A parsed numeric field: its value and whether it is written as an integer (no decimal
/// point, no exponent). Decimal strings with at most 15 significant digits and a small
/// exponent take Clinger's exact fast path (one correctly rounded multiply or divide); the
/// rest go through the standard library's correctly rounded parser.
pub(crate) fn parse_number(field: &[u8]) -> Option<(f64, bool)> {
    // Fast path for the usual `[-+]digits[.digits]` with at most 15 digits (16 bytes with the
    // point): the mantissa is exact and the power of ten too, so one division rounds
    // correctly. One pass, one test per byte in the common case.
    let (neg, body) = match field.split_first()? {
        (b'-', rest) => (true, rest),
        (b'+', rest) => (false, rest),
        _ => (false, field),
    };
    if body.len() > 16 {
        return parse_number_general(field);
    }
    let mut mant: u64 = 0;
    let mut dot = None;
    for (i, &c) in body.iter().enumerate() {
        let d = c.wrapping_sub(b'0');
        if d < 10 {
            mant = mant * 10 + u64::from(d);
        } else if c == b'.' && dot.is_none() {
            dot = Some(i);
        } else {
            return parse_number_general(field);
        }
    }
    let digits = body.len() - usize::from(dot.is_some());
    if digits == 0 || digits > 15 {
        return parse_number_general(field);
    }
    let frac = dot.map_or(0, |d| body.len() - 1 - d);
    // mant < 10^15: through i64, one instruction on x86-64, the same value.
    let v = mant as i64 as f64 / POW10[frac];
    Some((if neg { -v } else { v }, dot.is_none()))
}

/// [`parse_number`] for everything off its fast path (whitespace, exponents, long mantissas,
/// `inf`/`nan` spellings, non-numbers).
fn parse_number_general(field: &[u8]) -> Option<(f64, bool)> {
    let t = match (field.first(), field.last()) {
        (Some(a), Some(b)) if !a.is_ascii_whitespace() && !b.is_ascii_whitespace() => field,
        _ => field.trim_ascii(),
    };
    let (neg, body) = match t.first()? {
        b'-' => (true, &t[1..]),
        b'+' => (false, &t[1..]),
        _ => (false, t),
    };
    let mut mant: u64 = 0;
    let mut digits = 0u32;
    let mut i = 0;
    while i < body.len() && body[i].is_ascii_digit() {
        if digits < 19 {
            mant = mant * 10 + u64::from(body[i] - b'0');
            if mant != 0 {
                digits += 1;
            }
        } else {
            digits += 1;
        }
        i += 1;
    }
    let int_digits = i;
    let mut exp: i32 = 0;
    let mut frac_digits = 0;
    let mut integer = true;
    if i < body.len() && body[i] == b'.' {
        integer = false;
        i += 1;
        while i < body.len() && body[i].is_ascii_digit() {
            if digits < 19 {
                mant = mant * 10 + u64::from(body[i] - b'0');
                if mant != 0 {
                    digits += 1;
                }
                exp -= 1;
            } else {
                digits += 1;
            }
            frac_digits += 1;
            i += 1;
        }
    }
    if int_digits + frac_digits == 0 {
        // No digits at all: only "inf"/"infinity"/"nan" spellings remain numbers.
        let s = std::str::from_utf8(t).ok()?;
        let lower = body.to_ascii_lowercase();
        if matches!(lower.as_slice(), b"inf" | b"infinity" | b"nan") {
            return s.parse::<f64>().ok().map(|v| (v, false));
        }
        return None;
    }
    if i < body.len() && (body[i] == b'e' || body[i] == b'E') {
        integer = false;
        i += 1;
        let (eneg, start) = match body.get(i) {
            Some(b'-') => (true, i + 1),
            Some(b'+') => (false, i + 1),
            _ => (false, i),
        };
        i = start;
        let mut e: i32 = 0;
        while i < body.len() && body[i].is_ascii_digit() {
            e = e.saturating_mul(10).saturating_add(i32::from(body[i] - b'0'));
            i += 1;
        }
        if i == start {
            return None;
        }
        exp = exp.saturating_add(if eneg { -e } else { e });
    }
    if i != body.len() {
        return None;
    }
    if digits <= 15 && (-22..=22).contains(&exp) {
        let m = mant as f64;
        let v = if exp >= 0 { m * POW10[exp as usize] } else { m / POW10[(-exp) as usize] };
        return Some((if neg { -v } else { v }, integer));
    }
    let s = std::str::from_utf8(t).ok()?;
    s.parse::<f64>().ok().map(|v| (v, integer))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]

        /// The fast path reads every field as the general parser does: the value to the bit,
        /// the integer flag, and which fields are not numbers.
        #[test]
        fn fast_path_agrees_with_the_general_parser(field in "[-+]?[0-9.]{0,18}|[-+0-9.eE ]{0,18}") {
            let f = field.as_bytes();
            prop_assert_eq!(
                parse_number(f).map(|(v, i)| (v.to_bits(), i)),
                parse_number_general(f).map(|(v, i)| (v.to_bits(), i)),
                "{:?}", field
            );
        }

        /// Plain decimals come out as Rust's own parser reads them.
        #[test]
        fn plain_decimals_parse_exactly(neg in any::<bool>(), int in "[0-9]{0,9}", frac in proptest::option::of("[0-9]{0,9}")) {
            let text = format!("{}{int}{}", if neg { "-" } else { "" }, frac.as_ref().map(|f| format!(".{f}")).unwrap_or_default());
            let digits = int.len() + frac.as_ref().map_or(0, String::len);
            let got = parse_number(text.as_bytes());
            if digits == 0 {
                prop_assert!(got.is_none(), "{}", text);
            } else {
                let (v, is_int) = got.expect("a plain decimal is a number");
                prop_assert_eq!(v.to_bits(), text.parse::<f64>().unwrap().to_bits(), "{}", text);
                prop_assert_eq!(is_int, frac.is_none());
            }
        }
    }
}
