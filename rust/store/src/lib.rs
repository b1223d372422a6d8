//! heph-store
