//! The file as records: blocks read sequentially that end on record boundaries (quotes
//! honoured), and the fields of each record of a block.

use crate::error::{DriftError, Result};
use crate::progress::Progress;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;

/// Bytes read per block.
pub(super) const BLOCK: usize = 1 << 20;

/// Calls `f` with the fields of every non-blank record in `block` (complete records only).
pub(super) fn for_each_record(block: &[u8], ncols: usize, path: &Path, f: &mut dyn FnMut(&[&[u8]])) -> Result<()> {
    let too_many = |n: usize, line: &[u8]| DriftError::Csv {
        path: path.into(),
        message: format!(
            "expected {ncols} fields, saw {n} in row {:?}",
            String::from_utf8_lossy(&line[..line.len().min(200)])
        ),
    };
    if memchr::memchr(b'"', block).is_none() {
        // Fast path: no quoting anywhere in the block, so every ',' and '\n' is a separator.
        let mut fields: Vec<&[u8]> = Vec::with_capacity(ncols + 1);
        let mut emit = |fields: &mut Vec<&[u8]>| -> Result<()> {
            if let Some(last) = fields.last_mut() {
                *last = last.strip_suffix(b"\r").unwrap_or(last);
            }
            let blank = fields.len() == 1 && fields[0].is_empty();
            if !blank {
                if fields.len() > ncols {
                    let line = fields.join(&b","[..]);
                    return Err(too_many(fields.len(), &line));
                }
                f(fields);
            }
            fields.clear();
            Ok(())
        };
        let mut start = 0;
        for pos in memchr::memchr2_iter(b',', b'\n', block) {
            fields.push(&block[start..pos]);
            start = pos + 1;
            if block[pos] == b'\n' {
                emit(&mut fields)?;
            }
        }
        if start < block.len() {
            fields.push(&block[start..]);
            emit(&mut fields)?;
        }
        return Ok(());
    }
    let mut rdr = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(block);
    let mut rec = csv::ByteRecord::new();
    loop {
        match rdr.read_byte_record(&mut rec) {
            Ok(false) => break,
            Ok(true) => {
                if rec.len() == 1 && rec[0].is_empty() {
                    continue;
                }
                if rec.len() > ncols {
                    let line: Vec<u8> = rec.iter().collect::<Vec<_>>().join(&b","[..]);
                    return Err(too_many(rec.len(), &line));
                }
                let fields: Vec<&[u8]> = rec.iter().collect();
                f(&fields);
            }
            Err(e) => return Err(DriftError::Csv { path: path.into(), message: e.to_string() }),
        }
    }
    Ok(())
}

/// The end (exclusive) of the last complete record in `buf`, honouring quotes.
pub(super) fn last_boundary(buf: &[u8]) -> Option<usize> {
    if memchr::memchr(b'"', buf).is_none() {
        return memchr::memrchr(b'\n', buf).map(|i| i + 1);
    }
    let mut in_quotes = false;
    let mut last = None;
    for i in memchr::memchr2_iter(b'"', b'\n', buf) {
        if buf[i] == b'"' {
            in_quotes = !in_quotes;
        } else if !in_quotes {
            last = Some(i + 1);
        }
    }
    last
}

/// Reads `path` from `offset` and hands out blocks that end on record boundaries.
pub(super) fn stream_blocks(
    path: &Path,
    offset: u64,
    progress: &dyn Progress,
    abort: &AtomicBool,
    free: &mpsc::Receiver<Vec<u8>>,
    send: &mut dyn FnMut(Vec<u8>) -> bool,
) -> Result<()> {
    let mut file = File::open(path).map_err(|e| DriftError::io(path, e))?;
    file.seek(SeekFrom::Start(offset)).map_err(|e| DriftError::io(path, e))?;
    progress.advance(offset);
    let mut carry: Vec<u8> = Vec::new();
    let mut want = BLOCK;
    loop {
        if abort.load(Ordering::Relaxed) {
            return Ok(());
        }
        let mut buf = free.try_recv().unwrap_or_default();
        buf.clear();
        buf.reserve(carry.len() + want);
        buf.extend_from_slice(&carry);
        let before = buf.len();
        (&mut file).take(want as u64).read_to_end(&mut buf).map_err(|e| DriftError::io(path, e))?;
        let read = buf.len() - before;
        progress.advance(read as u64);
        if read == 0 {
            if !buf.is_empty() && !send(buf) {
                return Ok(());
            }
            return Ok(());
        }
        match last_boundary(&buf) {
            Some(end) => {
                carry.clear();
                carry.extend_from_slice(&buf[end..]);
                buf.truncate(end);
                want = BLOCK;
                if !send(buf) {
                    return Ok(());
                }
            }
            None => {
                // A record longer than the block: read more before cutting.
                carry = buf;
                want *= 2;
            }
        }
    }
}
