//! Titles and captions that fit: words wrapped onto as many lines as the width needs.

/// `text` broken at spaces into lines no wider than `max` by `width` (pixels); a single word
/// wider than `max` keeps a line of its own.
pub fn wrap(text: &str, max: f64, width: &dyn Fn(&str) -> f64) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut cur = String::new();
    for word in text.split_whitespace() {
        let trial = if cur.is_empty() { word.to_string() } else { format!("{cur} {word}") };
        if cur.is_empty() || width(&trial) <= max {
            cur = trial;
        } else {
            lines.push(std::mem::replace(&mut cur, word.to_string()));
        }
    }
    if !cur.is_empty() {
        lines.push(cur);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_at_spaces_within_the_width() {
        let w = |s: &str| 10.0 * s.chars().count() as f64;
        assert_eq!(wrap("one two three four", 100.0, &w), ["one two", "three four"]);
        assert_eq!(wrap("one two three four", 95.0, &w), ["one two", "three", "four"]);
        assert_eq!(wrap("short", 95.0, &w), ["short"]);
        assert_eq!(wrap("averyveryverylongword x", 50.0, &w), ["averyveryverylongword", "x"]);
        assert!(wrap("   ", 50.0, &w).is_empty());
        for l in wrap("the quick brown fox jumps over the lazy dog again and again", 120.0, &w) {
            assert!(w(&l) <= 120.0, "{l}");
        }
    }
}
