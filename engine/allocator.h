#pragma once

namespace aetl {

/// Sets glibc's malloc up for long streaming runs, once, at the start of main()
/// (before any thread). Records are allocated on one thread and freed on another;
/// chunks, batches and write buffers of a few hundred KiB to a few MiB come and go
/// between them. With glibc's defaults the holes this leaves make peak RSS creep
/// up with the input's size (a pass-through pipeline: 54 MB on 100 MB of input,
/// 62 MB on 2 GB). So:
///  - one arena: freed memory is reused by every thread, not kept in the arena of
///    the thread that first allocated it (8 per core by default);
///  - a fixed mmap threshold of 4 MiB: glibc otherwise raises it to the size of the
///    largest buffer freed so far (up to 32 MiB), after which such buffers are
///    carved out of the heap between small records. Lower costs CPU: at 1 MiB, a
///    postgres sink's COPY buffers were mapped and faulted in anew for every batch
///    (E3: 40% more CPU);
///  - a trim threshold of 64 MiB: with the mmap threshold fixed, glibc would give
///    the heap's top back at every 128 KiB and fault it in again (20% more CPU).
/// Peak RSS then stays within a few MB whatever the input's size (32 MiB or
/// 320 MiB of input: jsonl 32 → 35 MB, sqlite 35 → 37, postgres 49 → 54), at the
/// same speed. An explicit MALLOC_*_ variable or GLIBC_TUNABLES wins.
void tune_allocator();

}  // namespace aetl
