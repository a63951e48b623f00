//! Colour on stderr: a writer that colours the leading word of `error:`,
//! `warning:` and `note:` lines, only when stderr is a terminal and
//! `NO_COLOR` is unset or empty (<https://no-color.org>).
//!
//! The library's renderers write plain text; colouring is applied here, per
//! complete line, so every message gets the same treatment wherever it was
//! written.

use std::io::{self, IsTerminal, Write};

const RED_BOLD: &str = "\x1b[1;31m";
const YELLOW_BOLD: &str = "\x1b[1;33m";
const CYAN: &str = "\x1b[36m";
const BOLD: &str = "\x1b[1m";
const RESET: &str = "\x1b[0m";

/// Whether stderr gets colour: a terminal, and `NO_COLOR` unset or empty.
pub fn colour_stderr() -> bool {
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    !no_color && io::stderr().is_terminal()
}

/// stderr, coloured when [`colour_stderr`] says so.
pub fn stderr() -> Painter<io::Stderr> {
    // Not a held lock: staging reports progress from worker threads, whose
    // progress bar draws to stderr while this writer is alive.
    Painter::new(io::stderr(), colour_stderr())
}

/// A line-buffered writer that colours message prefixes when enabled
/// (and passes bytes through unchanged when not).
#[derive(Debug)]
pub struct Painter<W: Write> {
    inner: W,
    enabled: bool,
    line: Vec<u8>,
}

impl<W: Write> Painter<W> {
    /// Wraps `inner`; `enabled` false means a plain pass-through.
    pub fn new(inner: W, enabled: bool) -> Self {
        Painter {
            inner,
            enabled,
            line: Vec::new(),
        }
    }

    fn emit_line(&mut self) -> io::Result<()> {
        let line = std::mem::take(&mut self.line);
        let text = String::from_utf8_lossy(&line);
        let body = text.trim_start();
        let indent = &text[..text.len() - body.len()];
        for (word, colour) in [
            ("error:", RED_BOLD),
            ("warning:", YELLOW_BOLD),
            ("note:", CYAN),
            ("summary:", BOLD),
        ] {
            if let Some(rest) = body.strip_prefix(word) {
                return write!(self.inner, "{indent}{colour}{word}{RESET}{rest}");
            }
        }
        self.inner.write_all(&line)
    }
}

impl<W: Write> Write for Painter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if !self.enabled {
            return self.inner.write(buf);
        }
        for &b in buf {
            self.line.push(b);
            if b == b'\n' {
                self.emit_line()?;
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.enabled && !self.line.is_empty() {
            self.emit_line()?;
        }
        self.inner.flush()
    }
}

impl<W: Write> Drop for Painter<W> {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paint(text: &str, enabled: bool) -> String {
        let mut out = Vec::new();
        {
            let mut p = Painter::new(&mut out, enabled);
            p.write_all(text.as_bytes()).unwrap();
        }
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn colours_prefixes_only_when_enabled() {
        let text =
            "error: libx.so.1 (needed by /a): not found\n  note: stale cache\nplain\nwarning: w";
        assert_eq!(paint(text, false), text);
        let c = paint(text, true);
        assert!(c.starts_with("\x1b[1;31merror:\x1b[0m libx.so.1"), "{c:?}");
        assert!(c.contains("  \x1b[36mnote:\x1b[0m stale cache\n"), "{c:?}");
        assert!(c.contains("\nplain\n"), "{c:?}");
        assert!(c.ends_with("\x1b[1;33mwarning:\x1b[0m w"), "{c:?}");
    }
}
