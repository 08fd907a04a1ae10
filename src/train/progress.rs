//! Progress bars for long work (a bar per epoch), drawn on standard error only when it is a
//! terminal; hidden otherwise so logs and CI output stay clean.

use indicatif::{ProgressBar, ProgressStyle};

pub fn bar(enabled: bool, len: usize, message: &str) -> ProgressBar {
    if !enabled {
        return ProgressBar::hidden();
    }
    let b = ProgressBar::new(len as u64);
    if let Ok(style) =
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} batches {per_sec} eta {eta}")
    {
        b.set_style(style.progress_chars("=> "));
    }
    b.set_message(message.to_string());
    b
}
