// MappedFile: a whole file mapped read-only into memory (RAII, movable).
//
// Loading weights through a mapping lets the kernel page tensors in on
// demand and share them between processes instead of copying gigabytes.
// If another process truncates the file while it is mapped, touching the
// lost pages raises SIGBUS; files written by ember are replaced by rename,
// never truncated in place, so a mapping always sees one complete version.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace ember {

class MappedFile {
 public:
  MappedFile() = default;
  // Maps `path`; throws ember::Error naming the path and the system's reason.
  // An empty file is valid: data() is nullptr and size() is 0.
  explicit MappedFile(const std::string& path);
  ~MappedFile();

  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  const std::string& path() const { return path_; }

 private:
  void release() noexcept;

  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace ember
