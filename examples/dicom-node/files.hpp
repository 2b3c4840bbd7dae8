// Small POSIX file helpers with RAII: durable (fsync + rename) writes and an exclusive lock.
#pragma once

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <string>

namespace mvnode {

/** Owns a file descriptor; closes it once. */
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) noexcept : fd_(fd) {}
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  UniqueFd(UniqueFd&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  UniqueFd& operator=(UniqueFd&& o) noexcept {
    if (this != &o) {
      reset();
      fd_ = o.fd_;
      o.fd_ = -1;
    }
    return *this;
  }
  ~UniqueFd() { reset(); }
  int get() const noexcept { return fd_; }
  void reset() noexcept {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

inline std::string errno_text() { return std::strerror(errno); }

/** Flushes a file (or folder) to disk. */
inline void fsync_path(const std::filesystem::path& p) {
  UniqueFd fd(::open(p.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() >= 0) (void)::fsync(fd.get());
}

/** Writes `text` to `path` so that a crash leaves either the old or the new content. */
inline void write_file_atomic(const std::filesystem::path& path, const std::string& text) {
  const std::filesystem::path tmp = path.string() + ".tmp";
  {
    UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (fd.get() < 0) throw std::runtime_error(tmp.string() + ": cannot write: " + errno_text());
    size_t done = 0;
    while (done < text.size()) {
      const ssize_t n = ::write(fd.get(), text.data() + done, text.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) throw std::runtime_error(tmp.string() + ": write failed: " + errno_text());
      done += static_cast<size_t>(n);
    }
    if (::fsync(fd.get()) != 0) {
      throw std::runtime_error(tmp.string() + ": fsync failed: " + errno_text());
    }
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    throw std::runtime_error(path.string() + ": rename failed: " + errno_text());
  }
  fsync_path(path.parent_path());
}

/** An exclusive advisory lock on a file, held while the object lives (one node per data_dir). */
class FileLock {
 public:
  explicit FileLock(const std::filesystem::path& path)
      : fd_(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644)) {
    if (fd_.get() < 0) throw std::runtime_error(path.string() + ": cannot open: " + errno_text());
    if (::flock(fd_.get(), LOCK_EX | LOCK_NB) != 0) {
      throw std::runtime_error(path.string() + ": another medvision-node is using this data_dir");
    }
  }

 private:
  UniqueFd fd_;
};

}  // namespace mvnode
