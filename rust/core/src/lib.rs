//! heph-core: the domain — ids, hybrid logical clock, nodes, ops, merge and
//! buffer text formats. No IO here; the store and the network live elsewhere.

pub mod body_delta;
pub mod fields;
pub mod hlc;
pub mod id;
pub mod merge;
pub mod model;
pub mod op;
pub mod text;

pub use hlc::{Clock, Hlc, HlcError};
pub use id::NodeId;
pub use model::{Field, Kind, NewNode, Node, NodePatch, Status};
pub use op::{Action, Op};
