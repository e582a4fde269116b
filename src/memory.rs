//! Allocator tuning: the agent's resident memory follows its data, not
//! its peaks (glibc malloc).

/// One malloc arena. libyang trees are built and freed on whichever
/// blocking thread runs an rpc; with glibc's default of 8 arenas per core,
/// each thread keeps its own freed datastore copies and RSS grows to several
/// times the data (measured: 445 MiB after 10,000-peer runs). One arena
/// keeps freed memory reusable across threads (peak RSS of the plain
/// benchmark at 10,000 peers: 70 MiB with two arenas, 46 MiB with one;
/// operations run one at a time, so there is little allocator contention to
/// lose). Call before any thread is started.
///
/// And a fixed mmap threshold: blocks of [`MMAP_THRESHOLD`] and more get
/// pages of their own, returned to the system when freed. glibc otherwise
/// raises the threshold to the largest block freed so far (a 1.5 MB reply,
/// a 2 MiB read buffer), after which such blocks come from the heap: the
/// memory of every freed big block stays resident, and each userspace
/// WireGuard interface's ~2 MiB of packet buffers (`calloc`, so zeroed by
/// hand on the heap) is resident from its creation, whether a packet
/// ever uses it or not (measured: a bench run's 20 short-lived
/// interfaces raised the peak RSS by ~10 MiB).
pub fn one_arena() {
    // SAFETY: mallopt only tunes the allocator, under its own lock (called
    // later, it would only leave arenas made before in use).
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
    }
}

/// glibc's initial (and default) mmap threshold, kept from start on.
const MMAP_THRESHOLD: i32 = 128 * 1024;

/// [`release_free_memory`] once a burst of big messages is over: the trim
/// holds the allocator's lock while it walks the heap, so it waits until
/// no big message came for a moment (a client reading get-config five times
/// in a row would otherwise have each read wait for the previous trim).
pub fn release_free_memory_soon() {
    use std::sync::atomic::{AtomicU64, Ordering};
    static LAST_BIG: AtomicU64 = AtomicU64::new(0);
    const QUIET: std::time::Duration = std::time::Duration::from_millis(300);
    let stamp = LAST_BIG.fetch_add(1, Ordering::SeqCst) + 1;
    tokio::spawn(async move {
        tokio::time::sleep(QUIET).await;
        // Only the last big message of a burst trims.
        if LAST_BIG.load(Ordering::SeqCst) == stamp {
            let _ = tokio::task::spawn_blocking(release_free_memory).await;
        }
    });
}

/// Returns the allocator's free memory to the system (after a big request
/// or reply: glibc keeps freed heap otherwise, and the resident size would
/// stay at its peak).
pub fn release_free_memory() {
    let t = std::time::Instant::now();
    // SAFETY: malloc_trim only releases free pages of the allocator.
    unsafe {
        libc::malloc_trim(0);
    }
    tracing::debug!(elapsed_us = t.elapsed().as_micros() as u64, "heap trimmed");
}
