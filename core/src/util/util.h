// util/util.h — small helpers shared by the core modules. No torch.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace reglab::util {

std::vector<std::string> split(std::string_view text, char sep);
std::string join(const std::vector<std::string>& parts, std::string_view sep);
std::string trim(std::string_view text);
bool starts_with(std::string_view text, std::string_view prefix);
bool ends_with(std::string_view text, std::string_view suffix);

// Levenshtein distance, for "did you mean" suggestions.
std::size_t edit_distance(std::string_view a, std::string_view b);

// UTC wall-clock time as "2026-11-29T04:21:19.123Z".
std::string now_iso8601();
// Seconds since the epoch (monotonic enough for durations across processes).
double now_seconds();

std::string hostname();
// `git rev-parse --short HEAD` of `dir` plus "-dirty" when the tree has
// changes; "unknown" when dir is not a git checkout or git is missing.
std::string git_revision(const std::filesystem::path& dir);

// The last `max_lines` lines of a text file ("" when unreadable).
std::string tail_file(const std::filesystem::path& path, std::size_t max_lines);

// Reads a whole file; throws std::runtime_error naming the path on failure.
std::string read_file(const std::filesystem::path& path);

}  // namespace reglab::util
