//! Buffer text formats: what Neovim shows and what `:w` sends back.
