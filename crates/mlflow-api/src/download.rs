//! How the server sends a file it stores (the artifact proxy, served artifacts): MLflow's
//! content type and `Content-Disposition: attachment`.

use axum::body::Body;
use axum::http::header;
use axum::response::{IntoResponse, Response};

/// A download response with MLflow's headers: its content type (`_guess_mime_type`), and
/// `Content-Disposition: attachment`.
pub fn attachment(filename: &str, size: u64, body: Body) -> Response {
    (
        [
            (header::CONTENT_TYPE, mime_type(filename)),
            (header::CONTENT_LENGTH, size.to_string()),
            (header::CONTENT_DISPOSITION, content_disposition(filename)),
        ],
        body,
    )
        .into_response()
}

/// `mlflow.utils.mime_type_utils._guess_mime_type`: text for MLflow's text extensions (and
/// `MLmodel`, `MLproject`), else by extension, else binary.
pub fn mime_type(filename: &str) -> String {
    const TEXT: &[&str] = &[
        "txt",
        "log",
        "err",
        "cfg",
        "conf",
        "cnf",
        "cf",
        "ini",
        "properties",
        "prop",
        "hocon",
        "toml",
        "yaml",
        "yml",
        "xml",
        "json",
        "js",
        "py",
        "py3",
        "csv",
        "tsv",
        "md",
        "rst",
        "ipynb",
        "MLmodel",
        "mlproject",
    ];
    let extension = match filename.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => ext,
        _ => filename,
    };
    if TEXT.contains(&extension) {
        return "text/plain".into();
    }
    mime_guess::from_path(filename).first_or_octet_stream().essence_str().to_string()
}

/// `attachment; filename=...` as Werkzeug quotes it (a token stays bare), with RFC 5987's
/// `filename*` for names that are not ASCII.
pub fn content_disposition(filename: &str) -> String {
    let token =
        |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c));
    let quote = |s: &str| match token(s) {
        true => s.to_string(),
        false => format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\"")),
    };
    if filename.is_ascii() {
        return format!("attachment; filename={}", quote(filename));
    }
    let fallback: String = filename.chars().filter(char::is_ascii).collect();
    let fallback = if fallback.is_empty() { "download".to_string() } else { fallback };
    let encoded = percent_encoding::utf8_percent_encode(filename, ATTR_CHAR);
    format!("attachment; filename={}; filename*=UTF-8''{encoded}", quote(&fallback))
}

/// What RFC 5987 leaves unencoded besides letters and digits (`!#$&+-.^_`|~`).
const ATTR_CHAR: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'!')
    .remove(b'#')
    .remove(b'$')
    .remove(b'&')
    .remove(b'+')
    .remove(b'-')
    .remove(b'.')
    .remove(b'^')
    .remove(b'_')
    .remove(b'`')
    .remove(b'|')
    .remove(b'~');

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mlflow_mime_types_and_dispositions() {
        for (file, mime) in [
            ("a.txt", "text/plain"),
            ("b.pkl", "application/octet-stream"),
            ("c.png", "image/png"),
            ("d.pdf", "application/pdf"),
            ("MLmodel", "text/plain"),
            ("mlproject", "text/plain"),
        ] {
            assert_eq!(mime_type(file), mime, "{file}");
        }
        assert_eq!(content_disposition("a.txt"), "attachment; filename=a.txt");
        assert_eq!(content_disposition("a b.txt"), "attachment; filename=\"a b.txt\"");
        assert_eq!(content_disposition("é.txt"), "attachment; filename=.txt; filename*=UTF-8''%C3%A9.txt");
    }
}
