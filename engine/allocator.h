#pragma once

namespace aetl {

/// Sets glibc's malloc up for long streaming runs, once, at the start of main()
/// (before any thread). Records are allocated on one thread and freed on another,
/// and buffers of a chunk or a write (hundreds of KiB to a few MiB) come and go
/// all the time between them:
///  - 2 arenas, not 8 per core: freed memory is not spread over many arenas
///    (peak RSS of a 1 GB pipeline: 72 MB with 8, 56 MB with 2, same speed).
///  - A fixed mmap threshold of 256 KiB: glibc otherwise raises it to the size of
///    the largest buffer freed so far, after which such buffers are carved from
///    the heap between small records, and the holes they leave make the heap
///    (and RSS) creep up with the input's size. Mapped, they go back to the
///    system when freed.
/// An explicit MALLOC_ARENA_MAX / MALLOC_MMAP_THRESHOLD_ (or GLIBC_TUNABLES) wins.
void tune_allocator();

}  // namespace aetl
