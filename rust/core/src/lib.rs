//! heph-core: the domain — ids, hybrid logical clock, nodes, ops, merge and
//! buffer text formats. No IO here; the store and the network live elsewhere.

pub mod text;
