#pragma once

namespace aetl {

/// Sets glibc's malloc up for long streaming runs, once, at the start of main()
/// (before any thread). Records are allocated on one thread and freed on another;
/// chunks, batches and write buffers of a few hundred KiB to a few MiB come and go
/// between them. With glibc's defaults the holes this leaves make peak RSS creep
/// up with the input's size (a pass-through pipeline: 54 MB on 100 MB of input,
/// 62 MB on 2 GB). So:
///  - two arenas, not 8 per core: freed memory is mostly reused by every thread
///    rather than kept in the arena of the thread that first allocated it; one
///    arena made every thread queue on its lock (E2: 17% more CPU, 13% more
///    time), and release_free_memory() returns what the second one leaves;
///  - a fixed mmap threshold of 1 MiB: glibc otherwise raises it to the size of the
///    largest buffer freed so far (up to 32 MiB), after which such buffers (a
///    batch's record vector, write buffers) are carved out of the heap between
///    small records. At 4 MiB the postgres sink peaked at 59-63 MB (on 32 and
///    320 MiB of input), at 1 MiB at 52-56 MB; the price is those buffers mapped
///    and faulted in anew per batch: P1 (1M rows to postgres) 20% more CPU, the
///    same wall time; E2 (sqlite) the same CPU and time;
///  - a trim threshold of 64 MiB: with the mmap threshold fixed, glibc would give
///    the heap's top back at every 128 KiB and fault it in again (20% more CPU).
/// Peak RSS then stays within a few MB whatever the input's size (96 MiB or
/// 384 MiB of input: jsonl 33 → 37 MB, sqlite 45 → 46, postgres 54 → 55); it is the
/// base plus up to a second of churn between two trims (about 10 MB into sqlite;
/// trimming every 250 ms took 3 MB off that for 5-10% more CPU, not worth it).
/// An explicit MALLOC_*_ variable or GLIBC_TUNABLES wins.
void tune_allocator();

/// Gives the free pages inside the heaps back to the kernel (malloc_trim). With
/// two arenas (the lanes allocate records that the sink's thread frees) holes
/// between live chunks would otherwise keep peak RSS creeping up with the input;
/// the runner calls this about once a second, on a pool thread (a few ms).
void release_free_memory();

}  // namespace aetl
