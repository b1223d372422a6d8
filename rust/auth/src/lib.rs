//! heph-auth
