//! One way to print an error with its causes: the error's text, then each source's,
//! joined by ": ", leaving out a cause whose text is already there (wrappers that
//! repeat their source). Used for what the model reads, the log and the CLI's stderr.

use std::error::Error;

/// `err` and its sources, joined by ": ".
pub fn text(err: &(dyn Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let part = s.to_string();
        if !part.is_empty() && !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    #[derive(Debug, thiserror::Error)]
    #[error("{0}")]
    struct Plain(&'static str);

    #[derive(Debug, thiserror::Error)]
    #[error("{what}")]
    struct Wrap {
        what: &'static str,
        #[source]
        source: Plain,
    }

    #[test]
    fn causes_are_joined_and_repeats_left_out() {
        let e = Wrap {
            what: "creating app demo",
            source: Plain("Fly API answered 422"),
        };
        assert_eq!(super::text(&e), "creating app demo: Fly API answered 422");
        let repeating = Wrap {
            what: "step failed: Fly API answered 422",
            source: Plain("Fly API answered 422"),
        };
        assert_eq!(super::text(&repeating), "step failed: Fly API answered 422");
    }
}
