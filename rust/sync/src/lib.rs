//! heph-sync
