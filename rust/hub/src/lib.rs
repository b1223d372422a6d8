//! heph-hub
