// data/arith.h — the rlvr task family: integer arithmetic with a written-out
// scratchpad, a character vocabulary, the answer parser and the problem pools.
//
// Vocabulary (20 ids): 0 <pad>, 1 <bos>, 2 <eos>, 3..12 the digits '0'..'9',
// 13 '+', 14 '-', 15 '*', 16 '=', 17 ',', 18 '#', 19 '\n'.
//
// Text of one example (prompt, then response, then <eos>):
//   prompt    <bos> a OP b '\n'
//   response  column, column, ... '#' answer <eos>
// Columns run from the least significant digit (column 0) to the most
// significant one of the longer operand; a missing digit is written 0. Every
// column is 8 characters, x OP y OP c '=' o d, with o the digit passed on
// (carry or borrow) and d the digit of the result:
//   add  a+b:    x+y+c=od   c = carry in; 10·o + d = x + y + c
//   sub  a-b:    x-y-c=od   c = borrow in; d − 10·o = x − y − c (a ≥ b)
//   mul  a*k:    x*k+c=od   c = carry in; 10·o + d = x·k + c (k one digit)
// After the last column '#' and the answer in decimal without leading zeros.
// Examples (the prompt's <bos>/<eos> omitted):
//   "345+678\n" -> "5+8+0=13,4+7+1=12,3+6+1=10#1023"
//   "345-178\n" -> "5-8-0=17,4-7-1=16,3-1-1=01#167"
//   "345*7\n"   -> "5*7+0=35,4*7+3=31,3*7+3=24#2415"
//   "95+7\n"    -> "5+7+0=12,9+0+1=10#102"
// A response with L columns and an answer of n digits has 9L + n + 1 tokens
// with <eos>: 3-digit addition at most 32, 4-digit 42, 5-digit 52.
//
// Validity: a response's final answer is the text after its '#' up to <eos>:
// exactly one '#', then 1 to 18 digits and nothing else (leading zeros are
// accepted and read as the number). The scratchpad is not checked. A token
// sequence without <eos>, or with <pad>/<bos> before it, is invalid
// (a response cut off by the length limit has no final answer).
//
// Pools. Every problem belongs to exactly one of the pools train / rl / eval,
// by a fixed hash of its canonical form (op, and the operands, ordered for the
// commutative add and mul so that 3+4 and 4+3 fall together): bucket =
// splitmix64(key) mod 100, train [0, 50), rl [50, 75), eval [75, 100). The
// partition ignores seeds and digit ranges, so no seed or configuration can
// put one problem in two pools, in-domain or out-of-domain. A seed only picks
// which problems of the pool are drawn.
//
// Thread safety: pure functions; no shared state.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace reglab::data::arith {

inline constexpr std::int64_t kPad = 0;
inline constexpr std::int64_t kBos = 1;
inline constexpr std::int64_t kEos = 2;
inline constexpr std::int64_t kVocabSize = 20;

enum class Op { add, sub, mul };
enum class Pool { train, rl, eval };

struct ArithConfig {
  std::vector<Op> ops = {Op::add};  // drawn uniformly
  int min_digits = 1;               // digits of each operand (the first only for mul)
  int max_digits = 3;               // 1 ≤ min ≤ max ≤ 9
};

struct Problem {
  Op op = Op::add;
  std::int64_t a = 0;
  std::int64_t b = 0;  // sub: a ≥ b; mul: 0..9

  std::int64_t answer() const;
  std::string prompt_text() const;    // "345+678\n"
  std::string response_text() const;  // scratchpad '#' answer (no <eos>)
  bool operator==(const Problem&) const = default;
};

// Throws std::invalid_argument naming the bad field.
void validate(const ArithConfig& config);

std::string op_name(Op op);               // "add" | "sub" | "mul"
std::optional<Op> op_from_name(std::string_view name);

// Characters -> ids (throws std::invalid_argument on a character outside the
// vocabulary) and back (specials as "<pad>", "<bos>", "<eos>").
std::vector<std::int64_t> encode(std::string_view text);
std::string decode(const std::vector<std::int64_t>& ids);

std::vector<std::int64_t> prompt_tokens(const Problem& p);    // <bos> + prompt
std::vector<std::int64_t> response_tokens(const Problem& p);  // response + <eos>

// Longest prompt (with <bos>) and response (with <eos>) a config can produce.
std::int64_t max_prompt_tokens(const ArithConfig& config);
std::int64_t max_response_tokens(const ArithConfig& config);

// The text before the first <eos>; nullopt without <eos> or with a special or
// unknown id before it.
std::optional<std::string> response_text(const std::vector<std::int64_t>& ids);
// The final answer of a response text; nullopt = invalid (see above).
std::optional<std::int64_t> parse_answer(std::string_view text);
// response_text + parse_answer.
std::optional<std::int64_t> extract_answer(const std::vector<std::int64_t>& ids);
// The reasoning part: the text before the first '#' (all of it without one).
std::string_view scratchpad(std::string_view text);
bool is_correct(const Problem& p, std::optional<std::int64_t> answer);

Pool pool_of(const Problem& p);
// `count` distinct problems of `pool` drawn from the config's distribution
// with `seed` (deterministic; a shorter list is a prefix of a longer one).
// Throws std::invalid_argument when the pool's share of the problem space is
// too small to hold `count` problems.
std::vector<Problem> generate_pool(const ArithConfig& config, Pool pool, std::int64_t count, std::uint64_t seed);

}  // namespace reglab::data::arith
