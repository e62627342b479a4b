//! Cleaning free text: tokens that are identifying values of the same data set are masked.

use std::collections::HashSet;

/// Token boundaries: ASCII characters other than letters and digits, and the ideographic space.
fn is_separator(c: char) -> bool {
    (c.is_ascii() && !c.is_ascii_alphanumeric()) || c == '\u{3000}'
}

/// Tokens of at least two characters, lower-cased: what the cleaner looks for.
pub fn tokens(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(is_separator)
        .filter(|t| t.chars().count() >= 2)
        .map(str::to_lowercase)
}

/// Mask every identifying token of `text`, then every match of `patterns`, with as many `X` as
/// they have characters. Returns `None` when nothing changed.
pub fn clean(
    text: &str,
    identifying: &HashSet<String>,
    patterns: &[regex::Regex],
) -> Option<String> {
    let masked = mask_tokens(text, identifying);
    let mut current = masked.clone().unwrap_or_else(|| text.to_string());
    let mut changed = masked.is_some();
    for p in patterns {
        if p.is_match(&current) {
            let next = p
                .replace_all(&current, |c: &regex::Captures<'_>| {
                    "X".repeat(c[0].chars().count())
                })
                .into_owned();
            changed |= next != current;
            current = next;
        }
    }
    changed.then_some(current)
}

fn mask_tokens(text: &str, identifying: &HashSet<String>) -> Option<String> {
    if identifying.is_empty() {
        return None;
    }
    let mut out = String::with_capacity(text.len());
    let mut changed = false;
    let mut token = String::new();
    let mut flush = |token: &mut String, out: &mut String| {
        let n = token.chars().count();
        if n >= 2 && identifying.contains(&token.to_lowercase()) {
            out.extend(std::iter::repeat_n('X', n));
            changed = true;
        } else {
            out.push_str(token);
        }
        token.clear();
    };
    for c in text.chars() {
        if is_separator(c) {
            flush(&mut token, &mut out);
            out.push(c);
        } else {
            token.push(c);
        }
    }
    flush(&mut token, &mut out);
    changed.then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_whole_tokens_only() {
        let ids: HashSet<String> = tokens("Doe^John^^Dr").collect();
        assert_eq!(ids.len(), 3);
        assert_eq!(
            clean("CT head of john doe, by Dr. Johnson", &ids, &[]).as_deref(),
            Some("CT head of XXXX XXX, by XX. Johnson")
        );
        assert_eq!(clean("nothing here", &ids, &[]), None);
        let jp: HashSet<String> = tokens("山田^太郎").collect();
        assert_eq!(
            clean("山田　太郎様", &jp, &[]).as_deref(),
            Some("XX　太郎様")
        );
        let ssn = regex::Regex::new("[0-9]{3}-[0-9]{2}-[0-9]{4}").unwrap();
        assert_eq!(
            clean("id 123-45-6789 of doe", &ids, &[ssn]).as_deref(),
            Some("id XXXXXXXXXXX of XXX")
        );
    }
}
