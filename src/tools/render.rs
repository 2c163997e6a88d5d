//! Output discipline shared by every tool: the text cap with its truncation marker,
//! and small helpers for compact aligned tables.

/// A duration in whole milliseconds, as results report it (`elapsed_ms`, …); one too
/// long for a `u64` saturates.
pub fn millis(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Cuts `text` to at most `max` bytes (on a character boundary) and appends a marker
/// saying how much was left out and how to ask for less.
pub fn cap_text(text: String, max: usize, narrow_hint: &str) -> String {
    if text.len() <= max {
        return text;
    }
    let marker_budget = 200 + narrow_hint.len();
    let mut cut = max.saturating_sub(marker_budget).max(max / 2);
    while cut > 0 && !text.is_char_boundary(cut) {
        cut -= 1;
    }
    let kept = text.get(..cut).unwrap_or_default();
    // Prefer cutting at a line end.
    let kept = match kept.rfind('\n') {
        Some(i) if i > cut / 2 => kept.get(..i).unwrap_or(kept),
        Some(_) | None => kept,
    };
    format!(
        "{kept}\n… [truncated: showing {} of {} bytes. To narrow: {narrow_hint}]",
        kept.len(),
        text.len()
    )
}

/// A type shown one item a row: the headers of its columns and an item's cells, said
/// once next to each other.
pub trait Row {
    /// The column headers.
    const HEADER: &'static [&'static str];

    /// This item's cells, in [`Row::HEADER`]'s order.
    fn cells(&self) -> Vec<String>;
}

/// Implements [`Row`] for a type from its columns, each a header and the cell an item
/// shows under it: `table_row!(Line, |l| { "ID": l.id.clone(), "STATE": l.state() })`.
macro_rules! table_row {
    ($type:ty, |$item:ident| { $($header:literal: $cell:expr),+ $(,)? }) => {
        impl $crate::tools::render::Row for $type {
            const HEADER: &'static [&'static str] = &[$($header),+];

            fn cells(&self) -> Vec<String> {
                let $item = self;
                vec![$($cell),+]
            }
        }
    };
}
pub(crate) use table_row;

/// [`table`] of `items`, under their type's [`Row::HEADER`].
pub fn rows<T: Row>(items: &[T]) -> String {
    table_of(T::HEADER, items, T::cells)
}

/// How many items ended each way, as a report's header says it: `2 done, 0 failed`.
pub fn tally(counts: &[(impl std::fmt::Display, &str)]) -> String {
    counts
        .iter()
        .map(|(n, word)| format!("{n} {word}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A report on many items: its `head` and how many ended each way, then a row an item
/// (`app web: 1 destroyed, 1 failed` over the table).
pub fn tallied<T: Row>(
    head: &str,
    counts: &[(impl std::fmt::Display, &str)],
    items: &[T],
) -> String {
    format!("{head}: {}\n{}", tally(counts), rows(items))
}

/// [`table`] with one row an item: `cells` gives an item's columns, in `header`'s order.
pub fn table_of<'a, T: 'a>(
    header: &[&str],
    items: impl IntoIterator<Item = &'a T>,
    cells: impl FnMut(&'a T) -> Vec<String>,
) -> String {
    let rows: Vec<Vec<String>> = items.into_iter().map(cells).collect();
    table(header, &rows)
}

/// Renders rows as left-aligned columns separated by two spaces.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    // Widths as shown: the marks of app-controlled text take no column.
    let width = |cell: &str| super::untrusted::visible_len(cell);
    let mut widths: Vec<usize> = header.iter().map(|h| width(h)).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(width(cell));
            }
        }
    }
    let mut out = String::new();
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut parts = Vec::new();
        for (i, cell) in cells.enumerate() {
            let pad = widths
                .get(i)
                .copied()
                .unwrap_or(0)
                .saturating_sub(width(cell));
            parts.push(format!("{cell}{}", " ".repeat(pad)));
        }
        out.push_str(parts.join("  ").trim_end());
        out.push('\n');
    };
    line(&mut header.iter().copied());
    for row in rows {
        line(&mut row.iter().map(String::as_str));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_is_untouched() {
        assert_eq!(cap_text("abc".into(), 1000, "x"), "abc");
    }

    #[test]
    fn long_text_is_cut_with_a_marker_under_the_cap() {
        let text = "é line of text\n".repeat(5000);
        let out = cap_text(text.clone(), 4096, "pass a smaller `tail`");
        assert!(out.len() <= 4096, "{}", out.len());
        assert!(out.contains("[truncated: showing"));
        assert!(out.contains(&format!("of {} bytes", text.len())));
        assert!(out.contains("pass a smaller `tail`"));
    }

    #[test]
    fn table_aligns_columns() {
        let t = table(
            &["ID", "NAME"],
            &[
                vec!["1".into(), "a".into()],
                vec!["123".into(), "bb".into()],
            ],
        );
        assert_eq!(t, "ID   NAME\n1    a\n123  bb\n");
    }
}
