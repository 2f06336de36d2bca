#include "sources/lines/open_input.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "engine/record_decoder.h"
#include "engine/setup_error.h"
#include "engine/shutdown.h"
#include "sources/lines/line_splitter.h"

namespace aetl {

OpenInput::~OpenInput() { close_input(*this); }

bool gzip_named(std::string_view name) { return name.ends_with(".gz"); }

std::unique_ptr<OpenInput> check_input(const std::string& name, bool keep_open) {
  auto in = std::make_unique<OpenInput>();
  in->name = name;
  int fd = name == "-" ? STDIN_FILENO : ::open(name.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw SetupError(name + ": " + std::strerror(errno));
  in->fd = fd;  // closed by the destructor if this throws
  struct stat st {};
  if (::fstat(fd, &st) == 0) {
    if (S_ISDIR(st.st_mode)) throw SetupError(name + ": is a directory");
    in->regular = S_ISREG(st.st_mode);
    in->size = static_cast<uint64_t>(st.st_size);
  }
  if (!keep_open && in->regular) close_input(*in);
  if (gzip_named(name)) in->regular = true;  // gzread blocks like a file read
  return in;
}

void open_input(OpenInput& in) {
  if (in.name == "-") {
    in.fd = STDIN_FILENO;
    return;
  }
  if (in.fd < 0) in.fd = ::open(in.name.c_str(), O_RDONLY | O_CLOEXEC);
  if (in.fd < 0) throw std::runtime_error(in.name + ": " + std::strerror(errno));
  if (gzip_named(in.name) && !in.gz) {
    in.gz = gzdopen(in.fd, "rb");
    if (!in.gz) throw std::runtime_error(in.name + ": cannot read as gzip");
    gzbuffer(in.gz, 256 * 1024);
  }
}

void close_input(OpenInput& in) {
  if (in.gz) gzclose(in.gz);  // closes fd too
  else if (in.fd > STDIN_FILENO) ::close(in.fd);
  in.gz = nullptr;
  in.fd = -1;
}

void seek_input(OpenInput& in, uint64_t offset) {
  if (in.gz) {
    if (gzseek(in.gz, static_cast<z_off_t>(offset), SEEK_SET) < 0)
      throw std::runtime_error(in.name + ": cannot skip to the checkpoint");
  } else if (::lseek(in.fd, static_cast<off_t>(offset), SEEK_SET) < 0) {
    throw std::runtime_error(in.name + ": cannot seek to the checkpoint: " + std::strerror(errno));
  }
}

ssize_t read_chunk(OpenInput& in, char* buf, size_t size, const RunControl& control) {
  if (in.gz) {
    int n = gzread(in.gz, buf, static_cast<unsigned>(size));
    if (n < 0) {
      int errnum = 0;
      const char* msg = gzerror(in.gz, &errnum);
      throw std::runtime_error(in.name + ": " + (errnum == Z_ERRNO ? std::strerror(errno) : msg));
    }
    if (n == 0) {
      int errnum = Z_OK;
      gzerror(in.gz, &errnum);
      // zlib hands out what it could decompress and notes the cut as Z_BUF_ERROR
      if (errnum == Z_BUF_ERROR) throw std::runtime_error(in.name + ": unexpected end of the gzip stream (the file is cut short)");
    }
    return n;
  }
  for (;;) {
    if (!in.regular) {
      pollfd p{in.fd, POLLIN, 0};
      int r = ::poll(&p, 1, 100);
      if (r < 0 && errno != EINTR) throw std::runtime_error(in.name + ": " + std::strerror(errno));
      if (control.stopping()) return -1;
      if (r <= 0) continue;
    }
    ssize_t got = ::read(in.fd, buf, size);
    if (got < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (got < 0) throw std::runtime_error(in.name + ": read error: " + std::strerror(errno));
    return got;
  }
}

void read_csv_header(OpenInput& in, RecordDecoder& decoder, size_t max_line) {
  std::string buf(64 * 1024, '\0');
  LineSplitter splitter(max_line);
  std::vector<Line> lines;
  int fd = in.gz ? -1 : in.fd;
  uint64_t at = 0;
  while (!decoder.has_header()) {
    ssize_t n = 0;
    if (in.gz) {
      n = gzread(in.gz, buf.data(), static_cast<unsigned>(buf.size()));
    } else {
      n = ::pread(fd, buf.data(), buf.size(), static_cast<off_t>(at));
      if (n > 0) at += static_cast<uint64_t>(n);
    }
    if (n <= 0) break;
    splitter.feed(std::string_view(buf.data(), static_cast<size_t>(n)), lines);
    for (auto& l : lines) {
      decoder.decode_csv(l.text, l.number, l.crlf);
      if (decoder.has_header()) break;
    }
    lines.clear();
  }
  if (in.gz) gzrewind(in.gz);
}

}  // namespace aetl
