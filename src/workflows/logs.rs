//! Reading an app's logs the way an agent needs them: filtered by machine, region,
//! time (`since`) and text (`grep`), newest last, bounded in lines and bytes, with a
//! cursor to continue. Owns the filter parsing and the paging over Fly's logs API
//! (which pages forward only, with its own `next_token`); knows nothing of MCP.

use regex::{Regex, RegexBuilder};

use super::Error;
use super::observe::{clock_time, parse_rfc3339_ms};
use crate::fly;

/// Most lines one call returns.
pub const MAX_TAIL: usize = 500;
/// Lines returned when `tail` is not given.
pub const DEFAULT_TAIL: usize = 100;
/// Pages of the logs API one call reads at most (about 100 lines each).
pub const MAX_PAGES: usize = 20;
/// Longer messages are cut (with a marker) so one line cannot blow the output cap.
pub const MAX_MESSAGE: usize = 2_000;

/// One log line in domain form.
#[derive(Debug, Clone, PartialEq)]
pub struct LogLine {
    /// Entry id from the API (may be empty).
    pub id: String,
    /// Epoch nanoseconds (parsed from the RFC 3339 timestamp).
    pub ts_ns: i64,
    /// The timestamp as the API gave it.
    pub timestamp: String,
    /// Machine id.
    pub instance: String,
    pub region: String,
    pub level: String,
    pub message: String,
}

impl LogLine {
    /// Epoch milliseconds.
    pub fn ts_ms(&self) -> i64 {
        self.ts_ns.div_euclid(1_000_000)
    }

    /// Converts a wire-layer entry; `None` when its timestamp does not parse.
    pub fn from_entry(e: fly::LogEntry) -> Option<LogLine> {
        let ts_ns = parse_rfc3339_ns(&e.timestamp)?;
        Some(LogLine {
            id: e.id,
            ts_ns,
            timestamp: e.timestamp,
            instance: e.instance,
            region: e.region,
            level: e.level,
            message: clip_message(e.message),
        })
    }

    /// What this line costs in a result: its text plus the structured fields' keys
    /// and timestamp (so both renderings stay under the output cap).
    pub fn rendered_len(&self) -> usize {
        self.instance.len() + self.region.len() + self.level.len() + self.message.len() + 90
    }
}

fn clip_message(message: String) -> String {
    if message.len() <= MAX_MESSAGE {
        return message;
    }
    let mut cut = MAX_MESSAGE;
    while cut > 0 && !message.is_char_boundary(cut) {
        cut -= 1;
    }
    format!(
        "{}… [{} more bytes]",
        message.get(..cut).unwrap_or_default(),
        message.len() - cut
    )
}

/// Epoch nanoseconds of an RFC 3339 timestamp.
pub fn parse_rfc3339_ns(s: &str) -> Option<i64> {
    let ts: jiff::Timestamp = s.parse().ok()?;
    i64::try_from(ts.as_nanosecond()).ok()
}

/// A text filter: a case-insensitive substring, or a regular expression written
/// `/…/` (add `i` after the closing slash for case-insensitive).
#[derive(Debug, Clone)]
pub enum Grep {
    Substring(String),
    Regex(Regex),
}

impl Grep {
    /// Parses `grep`. A bad regex is an error naming the problem.
    pub fn parse(s: &str) -> Result<Grep, Error> {
        if let Some(body) = s.strip_prefix('/') {
            let (pattern, insensitive) = if let Some(p) = body.strip_suffix("/i") {
                (p, true)
            } else if let Some(p) = body.strip_suffix('/') {
                (p, false)
            } else {
                return Ok(Grep::Substring(s.to_lowercase()));
            };
            let re = RegexBuilder::new(pattern)
                .case_insensitive(insensitive)
                .size_limit(1 << 20)
                .build()
                .map_err(|e| Error::Invalid {
                    field: "grep".to_owned(),
                    rule: format!("not a valid regular expression: {e}"),
                })?;
            Ok(Grep::Regex(re))
        } else {
            Ok(Grep::Substring(s.to_lowercase()))
        }
    }

    /// True when `text` matches.
    pub fn matches(&self, text: &str) -> bool {
        match self {
            Grep::Substring(needle) => text.to_lowercase().contains(needle.as_str()),
            Grep::Regex(re) => re.is_match(text),
        }
    }
}

/// Parses `since`: a duration back from `now_ms` (`90s`, `15m`, `2h`, `1d`, `1h30m`)
/// or an RFC 3339 timestamp. Returns epoch milliseconds.
pub fn parse_since(s: &str, now_ms: i64) -> Result<i64, Error> {
    let s = s.trim();
    if let Some(ms) = parse_rfc3339_ms(s) {
        return Ok(ms);
    }
    let invalid = || Error::Invalid {
        field: "since".to_owned(),
        rule: format!(
            "'{s}' is neither a duration (e.g. 30s, 15m, 2h, 1d, 1h30m) nor an RFC 3339 time"
        ),
    };
    let mut total_ms: i64 = 0;
    let mut digits = String::new();
    for c in s.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let n: i64 = digits.parse().map_err(|_| invalid())?;
        let unit_ms = match c {
            's' => 1_000,
            'm' => 60_000,
            'h' => 3_600_000,
            'd' => 86_400_000,
            _ => return Err(invalid()),
        };
        total_ms = total_ms.saturating_add(n.saturating_mul(unit_ms));
        digits.clear();
    }
    if !digits.is_empty() || total_ms == 0 {
        return Err(invalid());
    }
    Ok(now_ms.saturating_sub(total_ms))
}

/// What to read.
#[derive(Debug, Clone, Default)]
pub struct LogsQuery {
    pub machine: Option<String>,
    pub region: Option<String>,
    /// Epoch milliseconds: lines at or after this time.
    pub since_ms: Option<i64>,
    /// Continue after this cursor (a `next` from an earlier answer).
    pub cursor: Option<String>,
    pub grep: Option<Grep>,
    /// At most this many lines (clamped to [`MAX_TAIL`]).
    pub tail: usize,
    /// At most this many bytes of rendered lines.
    pub max_bytes: usize,
}

/// What was read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LogsResult {
    /// Matching lines, oldest first (newest last).
    pub lines: Vec<LogLine>,
    /// Pass back as `next` to continue after the last line returned (or, when
    /// `complete`, to see lines that arrive later).
    pub next: Option<String>,
    /// Everything up to now was read (no more lines after these, yet).
    pub complete: bool,
    /// Lines read from the API (before `grep`).
    pub scanned: usize,
    /// Matching lines left out to stay under `tail` / the byte budget.
    pub left_out: usize,
    /// The latest-lines mode was used (no `since`/`next`): only the API's latest page
    /// was searched.
    pub latest_only: bool,
}

/// Which lines of a page to keep.
fn keep(line: &LogLine, q: &LogsQuery, after_ns: Option<i64>) -> bool {
    if let Some(after) = after_ns
        && line.ts_ns <= after
    {
        return false;
    }
    if let Some(since) = q.since_ms
        && line.ts_ms() < since
    {
        return false;
    }
    // The API filters by machine and region; check again (a cheap guard against a
    // server that ignores a filter).
    if let Some(m) = &q.machine
        && &line.instance != m
    {
        return false;
    }
    if let Some(r) = &q.region
        && &line.region != r
    {
        return false;
    }
    match &q.grep {
        Some(g) => g.matches(&line.message),
        None => true,
    }
}

fn fly_query(q: &LogsQuery, token: Option<String>) -> fly::LogQuery {
    fly::LogQuery {
        next_token: token,
        instance: q.machine.clone(),
        region: q.region.clone(),
    }
}

/// Where an `app_logs` answer's `next` points: the logs API's own `next_token` of a
/// page, plus how many entries of that page were already returned (when a call
/// stopped inside it). Written `TOKEN` or `TOKEN+SKIP`.
///
/// The token is the server's, never one made from the entries' timestamps: flyctl
/// pages with `meta.next_token` only (`logs/polling.go`), and a timestamp (rounded, or
/// shared by several lines) would repeat or lose lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogCursor {
    /// A `next_token` the logs API gave (or a Unix time in nanoseconds to start from).
    pub token: String,
    /// Entries of the page at `token` already returned.
    pub skip: usize,
}

/// Largest `skip` a cursor may carry (a page holds about 100 entries).
const MAX_SKIP: usize = 10_000;

impl LogCursor {
    /// Parses a `next` from an earlier answer.
    pub fn parse(cursor: &str) -> Result<LogCursor, Error> {
        let invalid = || Error::Invalid {
            field: "next".to_owned(),
            rule: "not a cursor from an earlier app_logs answer".to_owned(),
        };
        let cursor = cursor.trim();
        let (token, skip) = match cursor.split_once('+') {
            Some((t, n)) => (t, n.parse::<usize>().map_err(|_| invalid())?),
            None => (cursor, 0),
        };
        if token.is_empty() || token.len() > 40 || !token.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid());
        }
        if skip > MAX_SKIP {
            return Err(invalid());
        }
        Ok(LogCursor {
            token: token.to_owned(),
            skip,
        })
    }

    fn at(token: &str, skip: usize) -> LogCursor {
        LogCursor {
            token: token.to_owned(),
            skip,
        }
    }
}

impl std::fmt::Display for LogCursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.skip == 0 {
            f.write_str(&self.token)
        } else {
            write!(f, "{}+{}", self.token, self.skip)
        }
    }
}

/// Reads logs of `app`.
///
/// Without `since` or a cursor: the latest page the logs API gives (up to its last 100
/// lines of the past day), filtered, the newest `tail` kept. With `since` or a cursor:
/// pages forward from there with the API's `next_token`, returning the first `tail`
/// matching lines and a `next` cursor to continue; at most [`MAX_PAGES`] pages per call.
pub async fn read_logs(
    client: &fly::Client,
    app: &str,
    q: &LogsQuery,
) -> Result<LogsResult, Error> {
    let tail = q.tail.clamp(1, MAX_TAIL);
    let mut resolved = q.clone();
    if let Some(machine) = &q.machine {
        // An unknown machine would just read as "no logs": say so, with the valid
        // ids. A machine name is accepted and resolved to its id.
        resolved.machine = Some(super::status::get_machine(client, app, machine).await?.id);
    }
    let q = &resolved;
    let step = |what: &str| {
        Error::fly_or_not_found(format!("reading logs of app {app} ({what})"), || {
            super::status::missing_app(app)
        })
    };
    let start = match (&q.cursor, q.since_ms) {
        (Some(c), _) => Some(LogCursor::parse(c)?),
        // `next_token` also works as a "start from" time (Unix nanoseconds): the
        // first page holds what came after it.
        (None, Some(ms)) => Some(LogCursor::at(
            &ms.saturating_mul(1_000_000).saturating_sub(1).to_string(),
            0,
        )),
        (None, None) => None,
    };
    let Some(start) = start else {
        let page = client
            .app_logs(app, &fly_query(q, None))
            .await
            .map_err(step("latest lines"))?;
        let scanned = page.entries.len();
        let lines: Vec<LogLine> = page
            .entries
            .into_iter()
            .filter_map(LogLine::from_entry)
            .filter(|l| keep(l, q, None))
            .collect();
        let (kept, left_out) = newest_within(lines, tail, q.max_bytes);
        // Everything on this page was looked at; what was left out is older.
        return Ok(LogsResult {
            lines: kept,
            next: page.next_token,
            complete: true,
            scanned,
            left_out,
            latest_only: true,
        });
    };

    let mut out = LogsResult::default();
    let mut bytes = 0usize;
    let mut token = start.token;
    let mut skip = start.skip;
    for _ in 0..MAX_PAGES {
        let page = client
            .app_logs(app, &fly_query(q, Some(token.clone())))
            .await
            .map_err(step("paging"))?;
        let entries: Vec<fly::LogEntry> = page.entries.into_iter().skip(skip).collect();
        if entries.is_empty() {
            // Nothing after this token yet: keep it (flyctl does the same).
            out.complete = true;
            out.next = Some(LogCursor::at(&token, skip).to_string());
            return Ok(out);
        }
        out.scanned += entries.len();
        let lines: Vec<Option<LogLine>> = entries.into_iter().map(LogLine::from_entry).collect();
        for (i, line) in lines.iter().enumerate() {
            let Some(line) = line.as_ref().filter(|l| keep(l, q, None)) else {
                continue;
            };
            let len = line.rendered_len();
            if out.lines.len() >= tail || (bytes + len > q.max_bytes && !out.lines.is_empty()) {
                // Stop inside the page: the next call asks for the same page and skips
                // what was returned.
                out.next = Some(LogCursor::at(&token, skip + i).to_string());
                out.left_out += lines
                    .iter()
                    .skip(i)
                    .flatten()
                    .filter(|l| keep(l, q, None))
                    .count();
                return Ok(out);
            }
            bytes += len;
            out.lines.push(line.clone());
        }
        match page.next_token {
            Some(next) if next != token => {
                token = next;
                skip = 0;
            }
            // A full page without a new token: nothing else can be asked for now.
            _ => {
                out.complete = true;
                out.next = Some(LogCursor::at(&token, skip + lines.len()).to_string());
                return Ok(out);
            }
        }
    }
    out.next = Some(LogCursor::at(&token, 0).to_string());
    Ok(out)
}

/// Reads the lines of one machine between `from_ms` and `to_ms` (inclusive), paging
/// forward with the logs API's `next_token`, at most `max_pages` pages. Oldest first.
pub async fn read_window(
    client: &fly::Client,
    app: &str,
    machine: &str,
    from_ms: i64,
    to_ms: i64,
    max_pages: usize,
) -> Result<Vec<LogLine>, Error> {
    let from_ns = from_ms.saturating_mul(1_000_000);
    let to_ns = to_ms.saturating_mul(1_000_000).saturating_add(999_999);
    let mut token = from_ns.saturating_sub(1).to_string();
    let mut out = Vec::new();
    for _ in 0..max_pages {
        let q = fly::LogQuery {
            next_token: Some(token.clone()),
            instance: Some(machine.to_owned()),
            region: None,
        };
        let page = client.app_logs(app, &q).await.map_err(Error::fly(format!(
            "reading logs of machine {machine} (app {app})"
        )))?;
        if page.entries.is_empty() {
            break;
        }
        let lines: Vec<LogLine> = page
            .entries
            .into_iter()
            .filter_map(LogLine::from_entry)
            .filter(|l| l.instance == machine)
            .collect();
        let past_window = lines.last().is_some_and(|l| l.ts_ns > to_ns);
        out.extend(
            lines
                .into_iter()
                .filter(|l| l.ts_ns >= from_ns && l.ts_ns <= to_ns),
        );
        match page.next_token {
            Some(next) if next != token && !past_window => token = next,
            _ => break,
        }
    }
    Ok(out)
}

/// Keeps the newest lines within `tail` and `max_bytes`; returns them oldest first
/// and how many were left out.
fn newest_within(lines: Vec<LogLine>, tail: usize, max_bytes: usize) -> (Vec<LogLine>, usize) {
    let total = lines.len();
    let mut kept = Vec::new();
    let mut bytes = 0usize;
    for line in lines.into_iter().rev() {
        let len = line.rendered_len();
        if kept.len() >= tail || (bytes + len > max_bytes && !kept.is_empty()) {
            break;
        }
        bytes += len;
        kept.push(line);
    }
    kept.reverse();
    let left_out = total.saturating_sub(kept.len());
    (kept, left_out)
}

/// `HH:MM:SS.mmm` of a line (UTC).
pub fn line_clock(line: &LogLine) -> String {
    let ms = line.ts_ms().rem_euclid(1000);
    format!("{}.{ms:03}", clock_time(line.ts_ms()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(ts_s: i64, msg: &str) -> LogLine {
        LogLine {
            id: String::new(),
            ts_ns: ts_s * 1_000_000_000,
            timestamp: String::new(),
            instance: "m1".into(),
            region: "ams".into(),
            level: "info".into(),
            message: msg.into(),
        }
    }

    #[test]
    fn long_messages_are_cut_on_a_char_boundary() {
        let long = "é".repeat(MAX_MESSAGE);
        let cut = clip_message(long.clone());
        assert!(cut.len() < MAX_MESSAGE + 40, "{}", cut.len());
        assert!(cut.ends_with(&format!("[{} more bytes]", long.len() - MAX_MESSAGE)));
        assert_eq!(clip_message("short".into()), "short");
    }

    #[test]
    fn since_accepts_durations_and_timestamps() {
        let now = 1_767_225_600_000;
        assert_eq!(parse_since("15m", now).unwrap(), now - 900_000);
        assert_eq!(parse_since("1h30m", now).unwrap(), now - 5_400_000);
        assert_eq!(parse_since("2d", now).unwrap(), now - 172_800_000);
        assert_eq!(
            parse_since("2026-01-01T00:00:00Z", 0).unwrap(),
            1_767_225_600_000
        );
        for bad in ["", "15", "m", "15x", "yesterday", "0s"] {
            let err = parse_since(bad, now).unwrap_err().to_string();
            assert!(err.contains("since"), "{bad}: {err}");
        }
    }

    #[test]
    fn grep_is_substring_or_slash_regex() {
        let g = Grep::parse("health CHECK").unwrap();
        assert!(g.matches("Health check on port 3000 is now passing."));
        assert!(!g.matches("Server listening"));
        let r = Grep::parse(r"/port \d+ has failed/").unwrap();
        assert!(r.matches("Health check on port 3000 has failed."));
        assert!(!r.matches("Health check on PORT 3000 HAS FAILED."));
        let ri = Grep::parse(r"/port \d+ has failed/i").unwrap();
        assert!(ri.matches("Health check on PORT 3000 HAS FAILED."));
        // A lone leading slash is a substring.
        assert!(Grep::parse("/react").unwrap().matches("GET /react@18 200"));
        let err = Grep::parse("/(unclosed/").unwrap_err().to_string();
        assert!(err.contains("grep"), "{err}");
    }

    #[test]
    fn newest_within_keeps_the_tail_and_counts_the_rest() {
        let lines: Vec<LogLine> = (0..10).map(|i| line(i, "x")).collect();
        let (kept, left) = newest_within(lines.clone(), 3, usize::MAX);
        assert_eq!(
            kept.iter()
                .map(|l| l.ts_ns / 1_000_000_000)
                .collect::<Vec<_>>(),
            [7, 8, 9]
        );
        assert_eq!(left, 7);
        let one = lines[0].rendered_len();
        let (kept, left) = newest_within(lines, 100, one * 2);
        assert_eq!(kept.len(), 2);
        assert_eq!(left, 8);
    }

    #[test]
    fn keep_applies_every_filter() {
        let q = LogsQuery {
            machine: Some("m1".into()),
            region: Some("ams".into()),
            since_ms: Some(5_000),
            grep: Some(Grep::parse("ok").unwrap()),
            ..LogsQuery::default()
        };
        assert!(keep(&line(6, "all OK"), &q, None));
        assert!(!keep(&line(4, "all OK"), &q, None));
        assert!(!keep(&line(6, "nope"), &q, None));
        assert!(!keep(&line(6, "all OK"), &q, Some(6_000_000_000)));
        let mut other = line(6, "all OK");
        other.instance = "m2".into();
        assert!(!keep(&other, &q, None));
    }
}
