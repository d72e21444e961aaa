// AtomicFileWriter: temporary file, fsync, rename, directory fsync.
#include "ember/io/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <utility>

#include "ember/core/error.h"

namespace ember {

namespace {

// The directory whose entry the rename changes; it must be fsynced for the
// rename itself to survive a power loss.
std::string parent_dir(const std::string& path) {
  std::string parent = std::filesystem::path(path).parent_path().string();
  return parent.empty() ? std::string(".") : parent;
}

}  // namespace

AtomicFileWriter::AtomicFileWriter(std::string path, std::string where)
    : path_(std::move(path)), where_(std::move(where)) {
  EMBER_CHECK(!path_.empty(), where_, "cannot write a file with an empty path");
  temp_path_ = path_ + ".tmp." + std::to_string(::getpid());
  // No O_EXCL: a temporary left by a crashed process that had the same pid is
  // garbage and may be overwritten.
  do {
    fd_ = ::open(temp_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  } while (fd_ < 0 && errno == EINTR);
  if (fd_ < 0) {
    int err = errno;
    fail(where_, path_, ": cannot create temporary file '", temp_path_, "': ", std::strerror(err));
  }
}

AtomicFileWriter::~AtomicFileWriter() {
  if (!committed_) discard();
}

void AtomicFileWriter::discard() noexcept {
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
  ::unlink(temp_path_.c_str());
}

void AtomicFileWriter::write(const void* data, size_t n) {
  EMBER_CHECK(fd_ >= 0 && !committed_, where_, path_, ": write after commit or failure");
  const char* p = static_cast<const char*>(data);
  size_t left = n;
  while (left > 0) {
    // Linux writes at most ~2 GiB per call; loop over short writes.
    size_t chunk = std::min<size_t>(left, size_t{1} << 30);
    ssize_t got = ::write(fd_, p, chunk);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) {
      int err = got < 0 ? errno : EIO;
      discard();
      fail(where_, path_, ": write failed after ", written_, " bytes (", n - left, " of ", n,
           " in this piece): ", std::strerror(err));
    }
    p += got;
    left -= static_cast<size_t>(got);
    written_ += static_cast<size_t>(got);
  }
}

void AtomicFileWriter::commit() {
  EMBER_CHECK(fd_ >= 0 && !committed_, where_, path_, ": commit after commit or failure");
  if (::fsync(fd_) != 0) {
    int err = errno;
    discard();
    fail(where_, path_, ": fsync of '", temp_path_, "' failed: ", std::strerror(err));
  }
  // close() can report deferred write errors (NFS, quota), so it is checked.
  int rc = ::close(fd_);
  fd_ = -1;
  if (rc != 0 && errno != EINTR) {
    int err = errno;
    discard();
    fail(where_, path_, ": close of '", temp_path_, "' failed: ", std::strerror(err));
  }
  if (::rename(temp_path_.c_str(), path_.c_str()) != 0) {
    int err = errno;
    discard();
    fail(where_, path_, ": cannot rename '", temp_path_, "' over it: ", std::strerror(err));
  }
  committed_ = true;

  std::string dir = parent_dir(path_);
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) {
    int err = errno;
    fail(where_, path_, ": written, but cannot open directory '", dir,
         "' to make the rename durable: ", std::strerror(err));
  }
  // Some file systems cannot fsync a directory (EINVAL); there is nothing
  // more to be done there, so only real I/O errors are reported.
  int sync_rc = ::fsync(dfd);
  int err = errno;
  ::close(dfd);
  if (sync_rc != 0 && err != EINVAL) {
    fail(where_, path_, ": written, but fsync of directory '", dir, "' failed: ",
         std::strerror(err));
  }
}

void write_file_atomic(const std::string& path, std::string_view bytes) {
  AtomicFileWriter out(path);
  out.write(bytes);
  out.commit();
}

}  // namespace ember
