//! Giving memory back after large replies. A 30,000-line list is built,
//! encoded and sent in a few tens of megabytes that glibc keeps in its
//! arenas once freed (one arena per thread that ever allocated), so the
//! sidecar would hold the peak of its largest view for good. Fewer arenas
//! and an explicit trim keep its resident size near what it uses.

/// Limits malloc to two arenas (glibc's default is eight per core): the
/// sidecar's requests run one at a time, so more arenas only hold more
/// freed memory. Call once at startup.
pub fn limit_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator tuning; M_ARENA_MAX takes any
    // positive count and is safe to set while other threads allocate.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

/// Returns freed heap memory to the system.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free pages; it is thread-safe.
    unsafe {
        libc::malloc_trim(0);
    }
}
