#include "runner/lease.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <thread>

namespace reglab::runner {

namespace fs = std::filesystem;

namespace {

int open_lease_file(const fs::path& file, bool create) {
  const int fd = ::open(file.c_str(), O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0), 0644);
  if (fd < 0 && !(errno == ENOENT && !create))
    throw std::runtime_error("cannot open lease " + file.string() + ": " + std::strerror(errno));
  return fd;
}

// LOCK_EX | LOCK_NB: true when taken, false when another holder has it.
bool try_lock(int fd, const fs::path& file) {
  while (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    if (errno == EINTR) continue;
    if (errno == EWOULDBLOCK) return false;
    const int err = errno;
    ::close(fd);
    throw std::runtime_error("cannot lock lease " + file.string() + ": " + std::strerror(err));
  }
  return true;
}

}  // namespace

Lease::~Lease() { release(); }

Lease::Lease(Lease&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }

Lease& Lease::operator=(Lease&& other) noexcept {
  if (this != &other) {
    release();
    fd_ = other.fd_;
    other.fd_ = -1;
  }
  return *this;
}

std::optional<Lease> Lease::try_acquire(const fs::path& dir) {
  const fs::path file = dir / kLeaseFile;
  const int fd = open_lease_file(file, /*create=*/true);
  if (!try_lock(fd, file)) {
    ::close(fd);
    return std::nullopt;
  }
  return Lease(fd);
}

Lease Lease::adopt(int fd) { return Lease(fd); }

void Lease::release() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

bool lease_held(const fs::path& dir, std::chrono::milliseconds grace) {
  const fs::path file = dir / kLeaseFile;
  const auto deadline = std::chrono::steady_clock::now() + grace;
  while (true) {
    const int fd = open_lease_file(file, /*create=*/false);
    if (fd < 0) return false;  // never leased
    const bool free = try_lock(fd, file);
    ::close(fd);  // releases the probe's own lock, if it took one
    if (free) return false;
    if (std::chrono::steady_clock::now() >= deadline) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

std::string lease_support_problem(const fs::path& dir) {
  try {
    fs::create_directories(dir);
    std::optional<Lease> a = Lease::try_acquire(dir);
    if (!a) return "";  // someone holds it: flock works
    // A second open file must be refused while the first holds it; a file
    // system that only pretends (a local emulation) would grant both.
    const int fd = open_lease_file(dir / kLeaseFile, false);
    const bool second = fd >= 0 && try_lock(fd, dir / kLeaseFile);
    if (fd >= 0) ::close(fd);
    if (second) return "flock on " + (dir / kLeaseFile).string() + " does not exclude a second holder";
    return "";
  } catch (const std::exception& e) {
    return e.what();
  }
}

}  // namespace reglab::runner
