//! A limit on JSON nesting, checked with one pass over the bytes before a
//! parser sees them: client metadata, registration bodies and metadata
//! documents never need more than a few levels, and deep nesting only costs
//! the server stack and time.

/// The deepest nesting of arrays and objects accepted.
pub const MAX_DEPTH: usize = 32;

/// Whether `text` nests arrays and objects deeper than `max` (brackets
/// inside strings do not count). Malformed JSON is left to the parser.
pub fn too_deep(text: &[u8], max: usize) -> bool {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &b in text {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nesting_up_to_the_limit_is_accepted_and_deeper_is_not() {
        let at = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        let over = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        assert!(!too_deep(at.as_bytes(), MAX_DEPTH));
        assert!(too_deep(over.as_bytes(), MAX_DEPTH));
    }

    #[test]
    fn brackets_inside_strings_do_not_count() {
        let text = format!(
            r#"{{"client_name": "{}\"{}"}}"#,
            "[".repeat(100),
            "{".repeat(100)
        );
        assert!(!too_deep(text.as_bytes(), 2));
    }

    #[test]
    fn siblings_do_not_add_up() {
        let text = r#"{"a": [1], "b": [2], "c": {"d": [3]}}"#;
        assert!(!too_deep(text.as_bytes(), 3));
        assert!(too_deep(text.as_bytes(), 2));
    }
}
