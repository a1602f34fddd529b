//! A reader for Universal Binary JSON (ubjson.org, draft 12), the format XGBoost saves
//! `.ubj` models in (and `mlflow.xgboost`'s default). Values become `serde_json::Value`s, so
//! the XGBoost reader handles JSON and UBJSON models alike. Strongly typed containers
//! (`[$d#L…`), which XGBoost uses for its large arrays, are read in one pass. Numbers are
//! big-endian; `f32` values keep their exact value as `f64`.

use crate::{FormatError, Result};
use serde_json::{Map, Number, Value};

/// Nesting deeper than this is refused (XGBoost models nest about six levels).
const MAX_DEPTH: usize = 64;

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

fn bad(msg: impl std::fmt::Display) -> FormatError {
    FormatError::Invalid(format!("UBJSON: {msg}"))
}

/// Parses one UBJSON value (the whole input).
pub fn parse(bytes: &[u8]) -> Result<Value> {
    let mut r = Reader { bytes, at: 0 };
    let marker = r.byte()?;
    let v = r.value(marker, 0)?;
    Ok(v)
}

impl Reader<'_> {
    fn byte(&mut self) -> Result<u8> {
        let b = *self.bytes.get(self.at).ok_or_else(|| bad(format!("truncated at byte {}", self.at)))?;
        self.at += 1;
        Ok(b)
    }

    fn take<const N: usize>(&mut self) -> Result<[u8; N]> {
        let end = self.at.checked_add(N).filter(|&e| e <= self.bytes.len()).ok_or_else(|| bad("truncated"))?;
        let out = self.bytes[self.at..end].try_into().expect("length checked");
        self.at = end;
        Ok(out)
    }

    fn int(&mut self, marker: u8) -> Result<i64> {
        Ok(match marker {
            b'i' => i64::from(self.take::<1>()?[0] as i8),
            b'U' => i64::from(self.take::<1>()?[0]),
            b'I' => i64::from(i16::from_be_bytes(self.take()?)),
            b'l' => i64::from(i32::from_be_bytes(self.take()?)),
            b'L' => i64::from_be_bytes(self.take()?),
            m => return Err(bad(format!("expected an integer marker, got {:?} at byte {}", m as char, self.at - 1))),
        })
    }

    fn length(&mut self) -> Result<usize> {
        let m = self.byte()?;
        let n = self.int(m)?;
        let n = usize::try_from(n).map_err(|_| bad(format!("negative length {n}")))?;
        if n > self.bytes.len().saturating_sub(self.at) {
            // Every element takes at least one byte: a longer count is a corrupt file.
            return Err(bad(format!("length {n} is longer than the file")));
        }
        Ok(n)
    }

    fn string(&mut self) -> Result<String> {
        let n = self.length()?;
        let end = self.at.checked_add(n).filter(|&e| e <= self.bytes.len()).ok_or_else(|| bad("truncated string"))?;
        let s = std::str::from_utf8(&self.bytes[self.at..end]).map_err(|_| bad("a string is not UTF-8"))?;
        self.at = end;
        Ok(s.to_string())
    }

    fn float(v: f64) -> Value {
        Number::from_f64(v).map_or(Value::Null, Value::Number)
    }

    fn value(&mut self, marker: u8, depth: usize) -> Result<Value> {
        if depth > MAX_DEPTH {
            return Err(bad("nested too deeply"));
        }
        Ok(match marker {
            b'Z' => Value::Null,
            b'T' => Value::Bool(true),
            b'F' => Value::Bool(false),
            b'i' | b'U' | b'I' | b'l' | b'L' => Value::from(self.int(marker)?),
            b'd' => Self::float(f64::from(f32::from_be_bytes(self.take()?))),
            b'D' => Self::float(f64::from_be_bytes(self.take()?)),
            b'C' => Value::String((self.take::<1>()?[0] as char).to_string()),
            b'S' | b'H' => Value::String(self.string()?),
            b'[' => self.array(depth)?,
            b'{' => self.object(depth)?,
            m => return Err(bad(format!("unknown marker {:?} at byte {}", m as char, self.at - 1))),
        })
    }

    /// `$type` and `#count` after a container's opening marker, if present.
    fn container_header(&mut self) -> Result<(Option<u8>, Option<usize>)> {
        let mut ty = None;
        if self.bytes.get(self.at) == Some(&b'$') {
            self.at += 1;
            ty = Some(self.byte()?);
        }
        let count = if self.bytes.get(self.at) == Some(&b'#') {
            self.at += 1;
            Some(self.length()?)
        } else if ty.is_some() {
            return Err(bad("a typed container without a count"));
        } else {
            None
        };
        Ok((ty, count))
    }

    fn array(&mut self, depth: usize) -> Result<Value> {
        let (ty, count) = self.container_header()?;
        let mut items = Vec::with_capacity(count.unwrap_or(0).min(1 << 20));
        match count {
            Some(n) => {
                for _ in 0..n {
                    let m = match ty {
                        Some(t) => t,
                        None => self.byte()?,
                    };
                    items.push(self.value(m, depth + 1)?);
                }
            }
            None => loop {
                let m = self.byte()?;
                match m {
                    b']' => break,
                    b'N' => continue,
                    _ => items.push(self.value(m, depth + 1)?),
                }
            },
        }
        Ok(Value::Array(items))
    }

    fn object(&mut self, depth: usize) -> Result<Value> {
        let (ty, count) = self.container_header()?;
        let mut map = Map::new();
        let mut entry = |r: &mut Self| -> Result<()> {
            let key = r.string()?;
            let m = match ty {
                Some(t) => t,
                None => r.byte()?,
            };
            let v = r.value(m, depth + 1)?;
            map.insert(key, v);
            Ok(())
        };
        match count {
            Some(n) => {
                for _ in 0..n {
                    entry(self)?;
                }
            }
            None => loop {
                match self.bytes.get(self.at) {
                    Some(b'}') => {
                        self.at += 1;
                        break;
                    }
                    Some(b'N') => self.at += 1,
                    Some(_) => entry(self)?,
                    None => return Err(bad("truncated object")),
                }
            },
        }
        Ok(Value::Object(map))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(bytes: &[u8], expect: Value) {
        assert_eq!(parse(bytes).unwrap(), expect, "{bytes:?}");
    }

    #[test]
    fn values_and_containers() {
        check(b"Z", Value::Null);
        check(b"i\xff", json!(-1));
        check(b"I\x01\x00", json!(256));
        check(b"D\x3f\xf0\x00\x00\x00\x00\x00\x00", json!(1.0));
        check(b"d\x3f\x00\x00\x00", json!(0.5));
        check(b"SU\x02hi", json!("hi"));
        check(b"[i\x01T]", json!([1, true]));
        check(b"[$U#i\x03\x01\x02\x03", json!([1, 2, 3]));
        check(b"{U\x01ai\x02U\x01b[]}", json!({"a": 2, "b": []}));
        check(b"{#U\x01U\x01aZ", json!({"a": null}));
    }

    #[test]
    fn corrupt_input_is_an_error() {
        for b in
            [&b""[..], b"S", b"SU\x05hi", b"[", b"{U\x01a", b"X", b"[$U\x01", b"SL\xff\xff\xff\xff\xff\xff\xff\xff"]
        {
            assert!(parse(b).is_err(), "{b:?}");
        }
    }
}
