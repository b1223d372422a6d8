//! Identifiers: node ids, op ids, replica origins, and date-derived journal ids.

use time::Date;

/// Id of a node: UUIDv7 text, or `journal-YYYY-MM-DD` for journal days.
pub type NodeId = String;

/// A fresh random node id (UUIDv7: sortable by creation time).
pub fn new_node_id() -> NodeId {
    uuid::Uuid::now_v7().to_string()
}

/// A fresh op id.
pub fn new_op_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// A fresh replica origin: 16 lowercase hex characters.
pub fn new_origin() -> String {
    uuid::Uuid::now_v7().simple().to_string()[16..].to_owned()
}

/// The journal node of a day. Derived from the date alone, so two devices
/// that open the same day offline create the same node, not two.
pub fn journal_id(date: Date) -> NodeId {
    format!("journal-{}", crate::model::format_date(date))
}

/// Whether `id` is acceptable as a node id coming from outside.
pub fn is_valid_node_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_ids_depend_only_on_the_date() {
        let d = time::macros::date!(2026 - 11 - 22);
        assert_eq!(journal_id(d), "journal-2026-11-22");
        assert_eq!(journal_id(d), journal_id(d));
    }

    #[test]
    fn node_ids_are_unique_and_valid() {
        let a = new_node_id();
        let b = new_node_id();
        assert_ne!(a, b);
        assert!(is_valid_node_id(&a));
        assert!(!is_valid_node_id("a/b"));
        assert!(!is_valid_node_id(""));
    }
}
