// report/gnuplot.cpp — run gnuplot as a child process on a generated script.
#include "report/gnuplot.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <system_error>
#include <vector>

#include "util/util.h"

extern char** environ;

namespace reglab::report {

namespace fs = std::filesystem;

namespace {

class TempFolder {
 public:
  TempFolder() {
    std::string tmpl = (fs::temp_directory_path() / "reglab-plot-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) {
      throw std::runtime_error("cannot create a temporary folder " + tmpl + ": " + std::strerror(errno));
    }
    path_ = tmpl;
  }
  ~TempFolder() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempFolder(const TempFolder&) = delete;
  TempFolder& operator=(const TempFolder&) = delete;
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

std::string install_hint() {
  return "reglab draws plots with gnuplot: install it with `apt-get install gnuplot-nox` "
         "(tools/setup does), or point REGLAB_GNUPLOT at a gnuplot executable";
}

// The end of gnuplot's stderr, which names the failing script line.
std::string stderr_excerpt(const fs::path& file) {
  std::string text = util::trim(util::tail_file(file, 20));
  constexpr std::size_t kMax = 2000;
  if (text.size() > kMax) text = "..." + text.substr(text.size() - kMax);
  return text.empty() ? "(gnuplot printed nothing on stderr)" : text;
}

}  // namespace

ImageFormat image_format(const fs::path& output) {
  std::string ext = output.extension().string();
  for (char& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (ext == ".png") return ImageFormat::kPng;
  if (ext == ".svg") return ImageFormat::kSvg;
  throw std::invalid_argument("cannot tell the image format of '" + output.string() +
                              "' from its extension: use .png or .svg");
}

const char* extension(ImageFormat format) { return format == ImageFormat::kPng ? ".png" : ".svg"; }

std::string default_gnuplot() {
  const char* env = std::getenv("REGLAB_GNUPLOT");
  return env != nullptr && *env != '\0' ? env : "gnuplot";
}

std::string gnuplot_quote(std::string_view text) {
  std::string out = "'";
  for (char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '\'') {
      out += "''";
    } else if (u < 0x20 || u == 0x7f) {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out + "'";
}

std::string render(const std::function<std::string(const fs::path& output)>& script_for, ImageFormat format,
                   const std::string& program) {
  TempFolder dir;
  const fs::path script = dir.path() / "plot.gp";
  const fs::path image = dir.path() / (std::string("plot") + extension(format));
  const fs::path out_log = dir.path() / "gnuplot.out";
  const fs::path err_log = dir.path() / "gnuplot.err";
  {
    std::ofstream f(script, std::ios::binary);
    f << script_for(image);
    if (!f) throw std::runtime_error("cannot write " + script.string());
  }

  std::string arg0 = program, arg1 = script.string();
  std::vector<char*> argv = {arg0.data(), arg1.data(), nullptr};
  const std::string out_s = out_log.string(), err_s = err_log.string();
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, out_s.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&fa, 2, err_s.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  pid_t pid = -1;
  const int rc = posix_spawnp(&pid, program.c_str(), &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) {
    throw std::runtime_error("cannot run gnuplot ('" + program + "': " + std::strerror(rc) + "); " + install_hint());
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) throw std::runtime_error(std::string("waiting for gnuplot: ") + std::strerror(errno));
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    const std::string how = WIFEXITED(status) ? "exited with status " + std::to_string(WEXITSTATUS(status))
                                              : "was killed by signal " + std::to_string(WTERMSIG(status));
    // A shell's "command not found" (127) from a wrapper script means the
    // same as a missing program.
    const std::string hint = WIFEXITED(status) && WEXITSTATUS(status) == 127 ? "\n" + install_hint() : "";
    throw std::runtime_error("gnuplot ('" + program + "') " + how + ":\n" + stderr_excerpt(err_log) + hint);
  }
  std::error_code ec;
  if (!fs::exists(image, ec) || fs::file_size(image, ec) == 0) {
    throw std::runtime_error("gnuplot ('" + program + "') finished but wrote no image:\n" + stderr_excerpt(err_log));
  }
  return util::read_file(image);
}

}  // namespace reglab::report
