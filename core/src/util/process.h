// util/process.h — run a program and capture what it prints. No torch.
#pragma once

#include <string>
#include <vector>

namespace reglab::util {

struct ProcessResult {
  int exit_code = -1;  // 128 + signal when killed; 127 when the program could not be started
  std::string out, err;
};

// Runs argv[0] (searched on PATH) with argv, stdin from /dev/null, and waits
// for it. Both output streams are read concurrently, so a chatty program
// never blocks on a full pipe.
ProcessResult run_process(const std::vector<std::string>& argv);

}  // namespace reglab::util
