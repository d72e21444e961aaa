// MappedFile: open, fstat, mmap, and munmap on destruction.
#include "ember/io/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <limits>
#include <utility>

#include "ember/core/error.h"

namespace ember {

namespace {

// Closes the descriptor on every exit path; the mapping outlives it.
struct FdGuard {
  int fd;
  ~FdGuard() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

MappedFile::MappedFile(const std::string& path) : path_(path) {
  int fd;
  do {
    fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) {
    int err = errno;
    fail("io", "cannot open '", path, "': ", std::strerror(err));
  }
  FdGuard guard{fd};

  struct stat st;
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    fail("io", "cannot stat '", path, "': ", std::strerror(err));
  }
  if (!S_ISREG(st.st_mode)) {
    fail("io", "cannot map '", path, "': ", S_ISDIR(st.st_mode) ? "it is a directory" : "not a regular file");
  }
  if (st.st_size == 0) return;  // mmap rejects length 0; an empty file maps to nothing.
  if (static_cast<uint64_t>(st.st_size) > std::numeric_limits<size_t>::max()) {
    fail("io", "cannot map '", path, "': ", st.st_size, " bytes exceed the address space");
  }
  size_t size = static_cast<size_t>(st.st_size);
  void* p = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  if (p == MAP_FAILED) {
    int err = errno;
    fail("io", "cannot mmap '", path, "' (", size, " bytes): ", std::strerror(err));
  }
  data_ = static_cast<const uint8_t*>(p);
  size_ = size;
}

MappedFile::~MappedFile() { release(); }

MappedFile::MappedFile(MappedFile&& other) noexcept
    : path_(std::move(other.path_)),
      data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)) {}

MappedFile& MappedFile::operator=(MappedFile&& other) noexcept {
  if (this != &other) {
    release();
    path_ = std::move(other.path_);
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

void MappedFile::release() noexcept {
  if (data_ != nullptr) ::munmap(const_cast<uint8_t*>(data_), size_);
  data_ = nullptr;
  size_ = 0;
}

}  // namespace ember
