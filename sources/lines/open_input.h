#pragma once
#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

struct gzFile_s;  // zlib's gzFile

namespace aetl {

class RecordDecoder;
class RunControl;

/// One input of the `lines` source being read: raw bytes from a file or stdin
/// ("-"), or the decompressed bytes of a `.gz` file. Checked up front by
/// check_input(), which keeps it open only when asked to or when it is not a
/// plain file (a FIFO opened twice would lose its writer; a glob may match more
/// files than the process may have open at once), opened by open_input() when
/// its turn comes and closed by close_input() (or its destructor).
struct OpenInput {
  std::string name;
  int fd = -1;
  gzFile_s* gz = nullptr;  ///< set for a `.gz` input; owns fd then
  bool regular = false;    ///< reads block like a file read (a file or `.gz`): no polling for data
  uint64_t size = 0;       ///< bytes on disk when checked (of the compressed file for `.gz`)
  OpenInput() = default;
  OpenInput(const OpenInput&) = delete;
  OpenInput& operator=(const OpenInput&) = delete;
  ~OpenInput();  ///< closes what is still open (close_input)
};

/// True for a name read decompressed (ending in `.gz`): its size says nothing of
/// the bytes read, and its offsets are those of the decompressed stream.
bool gzip_named(std::string_view name);

/// Checks an input up front (so a missing file fails the run before anything is
/// written) and notes its size and kind. The input stays open when `keep_open`
/// (a file removed after the start is still read) or when it is not a plain
/// file (a FIFO, a terminal, a device). Throws SetupError for an input that
/// cannot be opened or is a directory.
std::unique_ptr<OpenInput> check_input(const std::string& name, bool keep_open);

/// Opens a checked input for reading (`.gz` through zlib), unless check_input
/// kept it open; throws std::runtime_error when it cannot be opened any more.
void open_input(OpenInput& in);

/// Closes an input opened by open_input(); stdin stays open.
void close_input(OpenInput& in);

/// Moves an opened input to byte `offset` (a resumed read: of the decompressed
/// stream for `.gz`); throws std::runtime_error when it cannot.
void seek_input(OpenInput& in, uint64_t offset);

/// Reads the next bytes of an opened input into `buf`, on the pool: >0 bytes
/// read, 0 at the end, -1 when the run is stopping (a pipe or terminal is polled
/// so that a stop is noticed while it has no data). Throws std::runtime_error on
/// read errors, and at the end of a `.gz` input cut short (a truncated file).
ssize_t read_chunk(OpenInput& in, char* buf, size_t size, const RunControl& control);

/// A resumed CSV read needs the header row from the start of the file: reads the
/// opened input from its start until `decoder` has the header (lines up to
/// `max_line`), without moving its file position (a `.gz` input is rewound).
void read_csv_header(OpenInput& in, RecordDecoder& decoder, size_t max_line);

}  // namespace aetl
