fn main() {
    bounded_allocator();
    std::process::exit(vaultctl::cli::main());
}

/// glibc raises its mmap threshold as large blocks are freed, after which
/// even the 16 MiB pack buffers come from per-thread heaps that keep freed
/// memory: peak RSS was 100 MB for a first backup and 136 MB for a restore,
/// 75 and 85 MB with a fixed threshold just above the largest chunk
/// (4 MiB). Chunk-sized buffers stay on the heap (a lower threshold saves a
/// little more memory but costs far more in page faults); pack-sized ones go
/// back to the system when freed. A fixed threshold also freezes the trim
/// threshold at 128 KiB, which would hand heap memory back and fault it in
/// again for every chunk (twice the system time): keep 32 MiB instead.
///
/// glibc also gives threads arenas of their own (up to 8 per core), each
/// keeping its freed memory: a restore with 4 jobs has a reader, 4 loader
/// threads and the runtime's, and peaked at 151 MB, 124 MB with
/// `MALLOC_ARENA_MAX=1`. Every buffer is chunk-sized (allocated per MiB,
/// not per row), so threads rarely contend for the arena: keep
/// [`ARENAS`], unless `MALLOC_ARENA_MAX` says otherwise.
fn bounded_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: called first thing, before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, (4 << 20) + (64 << 10));
        libc::mallopt(libc::M_TRIM_THRESHOLD, 32 << 20);
        if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
            libc::mallopt(libc::M_ARENA_MAX, ARENAS);
        }
    }
}

/// glibc's arenas (see [`bounded_allocator`]).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const ARENAS: libc::c_int = 2;
