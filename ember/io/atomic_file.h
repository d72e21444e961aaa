// Crash-safe file replacement: write to a temporary file beside the target,
// fsync it, rename it over the target, fsync the directory.
//
// Every writer of checkpoints, configs and weights goes through here so that
// a crash or a full disk leaves either the old file or the new one, never a
// torn mix, and never a stray temporary file after an error.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace ember {

// Streams bytes into `path + ".tmp.<pid>"`; commit() publishes them at `path`.
// If commit() is not reached (an exception, an early return) the destructor
// removes the temporary file and `path` is untouched.
//
// The temporary name is per process, so two threads of one process must not
// write the same path at the same time.
class AtomicFileWriter {
 public:
  // `where` is the bracketed tag that starts error messages ("[where] ...").
  explicit AtomicFileWriter(std::string path, std::string where = "io");
  ~AtomicFileWriter();

  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;

  void write(const void* data, size_t n);
  void write(std::string_view bytes) { write(bytes.data(), bytes.size()); }

  // Makes the file durable and visible at path(). Throws ember::Error (after
  // removing the temporary) if any step fails.
  void commit();

  const std::string& path() const { return path_; }
  const std::string& temp_path() const { return temp_path_; }
  size_t bytes_written() const { return written_; }

 private:
  void discard() noexcept;

  std::string path_;
  std::string temp_path_;
  std::string where_;
  int fd_ = -1;
  size_t written_ = 0;
  bool committed_ = false;
};

// Replaces the file at `path` with `bytes`, atomically (see AtomicFileWriter).
void write_file_atomic(const std::string& path, std::string_view bytes);

}  // namespace ember
