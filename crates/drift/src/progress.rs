//! Progress reporting for long reads: a small trait the library calls, an indicatif bar on
//! stderr for the CLI (hidden automatically when stderr is not a terminal) and a no-op.

/// Receives progress from a drift computation. Implementations must be cheap: `advance` is
/// called once per block read.
pub trait Progress: Sync {
    /// A new phase begins, `total` bytes long (0 when unknown).
    fn start(&self, message: &str, total: u64);
    /// `bytes` more were processed.
    fn advance(&self, bytes: u64);
    /// The phase is over.
    fn finish(&self);
}

/// Reports nothing.
#[derive(Clone, Copy, Debug, Default)]
pub struct Silent;

impl Progress for Silent {
    fn start(&self, _message: &str, _total: u64) {}
    fn advance(&self, _bytes: u64) {}
    fn finish(&self) {}
}

/// An indicatif progress bar on stderr.
#[derive(Debug)]
pub struct Bar {
    bar: indicatif::ProgressBar,
}

impl Bar {
    /// A bar drawn on stderr (drawn only when stderr is a terminal).
    pub fn stderr() -> Self {
        let bar = indicatif::ProgressBar::with_draw_target(None, indicatif::ProgressDrawTarget::stderr());
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{msg:>12} [{bar:40}] {binary_bytes}/{binary_total_bytes} ({binary_bytes_per_sec}, {eta})",
            )
            .expect("static template")
            .progress_chars("=> "),
        );
        Bar { bar }
    }
}

impl Progress for Bar {
    fn start(&self, message: &str, total: u64) {
        self.bar.reset();
        self.bar.set_length(total);
        self.bar.set_message(message.to_owned());
    }

    fn advance(&self, bytes: u64) {
        self.bar.inc(bytes);
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
