//! heph-core
