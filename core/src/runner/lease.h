// runner/lease.h — a run is running exactly while its lease is held.
//
// A lease is an exclusive flock(2) on the file `lease` in the run's folder.
// The coordinator takes it before it claims the run in the store and the
// worker inherits it across fork (and exec, through --lease-fd), so it is held
// from the claim until the last process of the attempt is gone: the kernel
// releases it when that process exits, however it dies (SIGKILL, OOM kill,
// the coordinator's death). Nothing here trusts a pid: a dying or reused pid
// cannot make a dead run look alive, and a lease on a shared file system that
// supports flock is seen from every host. No torch.
#pragma once

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>

namespace reglab::runner {

inline constexpr const char* kLeaseFile = "lease";

class Lease {
 public:
  Lease() = default;
  ~Lease();
  Lease(Lease&& other) noexcept;
  Lease& operator=(Lease&& other) noexcept;
  Lease(const Lease&) = delete;
  Lease& operator=(const Lease&) = delete;

  // Takes the lease of the run folder `dir` (creating the lease file) without
  // waiting; nullopt when another process holds it. Throws
  // std::runtime_error naming the file when it cannot be opened or flock
  // fails for another reason (a file system without flock: ENOLCK, EINVAL).
  static std::optional<Lease> try_acquire(const std::filesystem::path& dir);
  // Adopts a descriptor that already holds the lease (a worker's inherited
  // --lease-fd).
  static Lease adopt(int fd);

  bool held() const { return fd_ >= 0; }
  int fd() const { return fd_; }
  // Closes this process's descriptor: the lease is released once no other
  // process (a forked worker) holds a descriptor of the same open file.
  void release();

 private:
  explicit Lease(int fd) : fd_(fd) {}
  int fd_ = -1;
};

// Whether some process holds the lease of `dir`. A missing lease file is not
// held. Waits up to `grace` for a holder that is releasing it (a worker dying
// with its coordinator); with zero grace it answers at once.
bool lease_held(const std::filesystem::path& dir, std::chrono::milliseconds grace = std::chrono::milliseconds(0));

// "" when flock works in `dir` (creating it when missing); otherwise why not,
// e.g. "flock: No locks available (ENOLCK)" on an NFS mount without a lock
// manager. For `reglab status` and Slurm elements.
std::string lease_support_problem(const std::filesystem::path& dir);

}  // namespace reglab::runner
