//! Logging: `--log-format plain|json`, level from `RUST_LOG` (default `info`).
//!
//! Plain lines write their fields as logfmt ([`Logfmt`]): a value that holds a space, `=`,
//! `"`, `\` or a control character is quoted and escaped, so one event is one line whatever
//! a request put in its values. JSON lines are escaped by the JSON writer.

use std::fmt;
use tracing::field::{Field, Visit};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::field::{MakeVisitor, VisitFmt, VisitOutput};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::util::SubscriberInitExt;

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Plain,
    Json,
}

/// Installs the global subscriber (once; later calls are ignored).
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // Colours only on a terminal: log files and collectors get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = subscriber(format, filter, std::io::stderr, ansi).try_init();
}

/// The subscriber writing `format` lines to `writer`.
pub fn subscriber<W>(
    format: LogFormat,
    filter: EnvFilter,
    writer: W,
    ansi: bool,
) -> Box<dyn tracing::Subscriber + Send + Sync>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(ansi);
    match format {
        LogFormat::Plain => Box::new(builder.fmt_fields(Logfmt).finish()),
        LogFormat::Json => Box::new(
            builder
                .json()
                .flatten_event(true)
                .with_current_span(false)
                .finish(),
        ),
    }
}

/// Fields as logfmt: `key=value`, the value quoted when it must be, the message first and
/// unquoted with its control characters escaped.
pub struct Logfmt;

impl<'w> MakeVisitor<Writer<'w>> for Logfmt {
    type Visitor = LogfmtVisitor<'w>;

    fn make_visitor(&self, writer: Writer<'w>) -> Self::Visitor {
        LogfmtVisitor {
            writer,
            first: true,
            result: Ok(()),
        }
    }
}

/// Writes one event's or span's fields.
pub struct LogfmtVisitor<'w> {
    writer: Writer<'w>,
    first: bool,
    result: fmt::Result,
}

impl LogfmtVisitor<'_> {
    /// Writes the separator and `name=`; `false` when the field is not written.
    fn start(&mut self, name: &str) -> bool {
        // tracing-log's own fields repeat the line's metadata.
        if self.result.is_err() || name.starts_with("log.") {
            return false;
        }
        if !self.first {
            self.result = self.writer.write_char(' ');
        }
        self.first = false;
        if name != "message" {
            let name = name.strip_prefix("r#").unwrap_or(name);
            self.result = self
                .result
                .and_then(|()| self.writer.write_str(name))
                .and_then(|()| self.writer.write_char('='));
        }
        self.result.is_ok()
    }

    fn text(&mut self, name: &str, value: &str) {
        if self.start(name) {
            self.result = if name == "message" {
                write_escaped(&mut self.writer, value)
            } else {
                write_value(&mut self.writer, value)
            };
        }
    }

    /// A value that never needs quotes (numbers, booleans).
    fn bare(&mut self, name: &str, value: fmt::Arguments<'_>) {
        if self.start(name) {
            self.result = self.writer.write_fmt(value);
        }
    }
}

impl Visit for LogfmtVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.text(field.name(), value);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let text = format!("{value:?}");
        self.text(field.name(), &text);
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.bare(field.name(), format_args!("{value}"));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.bare(field.name(), format_args!("{value}"));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.bare(field.name(), format_args!("{value}"));
    }
}

impl VisitOutput<fmt::Result> for LogfmtVisitor<'_> {
    fn finish(self) -> fmt::Result {
        self.result
    }
}

impl VisitFmt for LogfmtVisitor<'_> {
    fn writer(&mut self) -> &mut dyn fmt::Write {
        &mut self.writer
    }
}

/// Characters written as escapes: control characters (a newline would start a forged line)
/// and the Unicode line and paragraph separators some viewers break lines at.
fn is_escaped(c: char) -> bool {
    c.is_control() || c == '\u{2028}' || c == '\u{2029}'
}

/// Writes a value, quoted when it is empty or holds a space, `=`, `"`, `\` or an escaped
/// character.
fn write_value(w: &mut dyn fmt::Write, value: &str) -> fmt::Result {
    let plain = !value.is_empty()
        && !value
            .chars()
            .any(|c| matches!(c, ' ' | '=' | '"' | '\\') || is_escaped(c));
    if plain {
        return w.write_str(value);
    }
    w.write_char('"')?;
    write_runs(w, value, |c| matches!(c, '"' | '\\') || is_escaped(c))?;
    w.write_char('"')
}

/// Writes a message: unquoted, its escaped characters escaped.
fn write_escaped(w: &mut dyn fmt::Write, value: &str) -> fmt::Result {
    write_runs(w, value, is_escaped)
}

/// Writes `value`, each character `special` says as an escape, the runs between as they are.
fn write_runs(w: &mut dyn fmt::Write, value: &str, special: impl Fn(char) -> bool) -> fmt::Result {
    let mut rest = value;
    while let Some((at, c)) = rest.char_indices().find(|&(_, c)| special(c)) {
        w.write_str(rest.get(..at).unwrap_or_default())?;
        match c {
            '"' => w.write_str("\\\"")?,
            '\\' => w.write_str("\\\\")?,
            '\n' => w.write_str("\\n")?,
            '\r' => w.write_str("\\r")?,
            '\t' => w.write_str("\\t")?,
            c => write!(w, "\\u{:04x}", u32::from(c))?,
        }
        rest = rest.get(at + c.len_utf8()..).unwrap_or_default();
    }
    w.write_str(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(text: &str) -> String {
        let mut out = String::new();
        write_value(&mut out, text).unwrap();
        out
    }

    #[test]
    fn values_are_quoted_and_escaped_only_when_they_must_be() {
        assert_eq!(value("alice"), "alice");
        assert_eq!(
            value("system:serviceaccount:a:b"),
            "system:serviceaccount:a:b"
        );
        assert_eq!(value(""), r#""""#);
        assert_eq!(value("a b"), r#""a b""#);
        assert_eq!(value("k=v"), r#""k=v""#);
        assert_eq!(value(r#"say "hi"\"#), r#""say \"hi\"\\""#);
        assert_eq!(value("a\nb\r\tc"), r#""a\nb\r\tc""#);
        assert_eq!(value("\u{1b}[31m\u{2028}é"), r#""\u001b[31m\u2028é""#);
        let mut message = String::new();
        write_escaped(&mut message, "line one\nuser=\"x\"").unwrap();
        assert_eq!(message, r#"line one\nuser="x""#);
    }
}
