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
    // Fast path for the usual `[-+]digits[.digits]` with at most 15 digits: the mantissa is
    // exact and the power of ten too, so one division rounds correctly.
    let (neg, start) = match field.first()? {
        b'-' => (true, 1),
        b'+' => (false, 1),
        _ => (false, 0),
    };
    let mut mant: u64 = 0;
    let mut i = start;
    while i < field.len() && i - start < 16 && field[i].is_ascii_digit() {
        mant = mant * 10 + u64::from(field[i] - b'0');
        i += 1;
    }
    let int_digits = i - start;
    let mut frac = 0;
    let dot = i < field.len() && field[i] == b'.';
    if dot {
        i += 1;
        let f0 = i;
        while i < field.len() && i - f0 < 16 && field[i].is_ascii_digit() {
            mant = mant * 10 + u64::from(field[i] - b'0');
            i += 1;
        }
        frac = i - f0;
    }
    if i == field.len() && int_digits + frac > 0 && int_digits + frac <= 15 {
        let v = mant as f64 / POW10[frac];
        return Some((if neg { -v } else { v }, !dot));
    }
    parse_number_general(field)
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
