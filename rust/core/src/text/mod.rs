//! Buffer text formats: what Neovim shows and what `:w` sends back. Rust
//! owns these rules so they are tested and fuzzed without an editor.

pub mod home;
pub mod links;
pub mod list_buffer;
pub mod node_buffer;
pub mod promote;

/// A problem in buffer text, on a 1-based line.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ParseError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl ParseError {
    pub(crate) fn new(line: usize, message: impl Into<String>) -> Self {
        Self {
            line,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}
