// report/gnuplot.h — drive the gnuplot program to render a script.
//
// reglab never draws pixels itself: it writes a self-contained gnuplot
// script (data inline as datablocks) and runs gnuplot on it as a child
// process in a private temporary folder. Errors are exceptions whose message
// says what to do: install gnuplot, or read gnuplot's own complaint (its
// stderr is quoted). Stateless and thread-compatible. No torch.
#pragma once

#include <filesystem>
#include <functional>
#include <string>
#include <string_view>

namespace reglab::report {

enum class ImageFormat { kPng, kSvg };

// From the output file's extension (case-insensitive): .png or .svg.
// std::invalid_argument naming the file and the supported extensions otherwise.
ImageFormat image_format(const std::filesystem::path& output);
const char* extension(ImageFormat format);  // ".png" or ".svg"

// The gnuplot executable to run: $REGLAB_GNUPLOT when set, else "gnuplot"
// (searched on PATH).
std::string default_gnuplot();

// A gnuplot single-quoted string literal holding `text`. Inside single
// quotes gnuplot expands nothing (no macros, no backslash escapes), so only
// the quote itself needs doubling; line breaks and other control characters
// would end the command and become spaces.
std::string gnuplot_quote(std::string_view text);

// Runs `program` on the script `script_for(output)` returns, in a new
// temporary folder (removed afterwards), and returns the bytes of the image
// gnuplot wrote to `output`, a path inside that folder: a failed run never
// leaves a half-written file where the caller wants the result.
// std::runtime_error when gnuplot cannot be started (saying how to install
// it), exits with an error (quoting its stderr), or writes no image.
std::string render(const std::function<std::string(const std::filesystem::path& output)>& script_for,
                   ImageFormat format, const std::string& program = default_gnuplot());

}  // namespace reglab::report
