//! `[[Title]]` and `[[id]]` links inside bodies.

/// The target of the `[[…]]` link covering byte column `col` (0-based), or
/// of the first link on the line when `col` is on none.
pub fn link_at(line: &str, col: usize) -> Option<String> {
    let mut first = None;
    let mut start = 0;
    while let Some(open) = line[start..].find("[[") {
        let open = start + open;
        let Some(close) = line[open + 2..].find("]]") else {
            break;
        };
        let close = open + 2 + close;
        let target = line[open + 2..close].trim();
        if !target.is_empty() {
            if (open..close + 2).contains(&col) {
                return Some(target.to_owned());
            }
            first.get_or_insert_with(|| target.to_owned());
        }
        start = close + 2;
    }
    first
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_link_under_the_cursor() {
        let line = "see [[Alpha]] and [[ Beta ]]";
        assert_eq!(link_at(line, 6).as_deref(), Some("Alpha"));
        assert_eq!(link_at(line, 20).as_deref(), Some("Beta"));
        assert_eq!(link_at(line, 0).as_deref(), Some("Alpha"));
        assert_eq!(link_at("no links [[", 3), None);
        assert_eq!(link_at("[[]]", 1), None);
    }
}
