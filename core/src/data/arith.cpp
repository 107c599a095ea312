#include "data/arith.h"

#include <algorithm>
#include <set>
#include <stdexcept>
#include <tuple>

namespace reglab::data::arith {

namespace {

constexpr std::string_view kSymbols = "0123456789+-*=,#\n";  // ids 3.. in this order
constexpr std::int64_t kFirstSymbol = 3;

std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

// A portable stream (std::uniform_int_distribution differs between standard
// libraries, and pools must be the same everywhere).
class Stream {
 public:
  explicit Stream(std::uint64_t seed) : state_(seed) {}
  std::uint64_t next() {
    state_ += 0x9E3779B97F4A7C15ULL;
    return splitmix64(state_);
  }
  // Uniform in [0, n); the modulo bias (n / 2^64) is far below anything measurable.
  std::int64_t below(std::int64_t n) { return static_cast<std::int64_t>(next() % static_cast<std::uint64_t>(n)); }

 private:
  std::uint64_t state_;
};

char op_char(Op op) {
  switch (op) {
    case Op::add: return '+';
    case Op::sub: return '-';
    case Op::mul: return '*';
  }
  return '?';
}

std::int64_t pow10(int k) {
  std::int64_t p = 1;
  for (int i = 0; i < k; ++i) p *= 10;
  return p;
}

int digit_count(std::int64_t x) {
  int n = 1;
  while (x >= 10) {
    x /= 10;
    ++n;
  }
  return n;
}

int digit_at(std::int64_t x, int i) { return static_cast<int>((x / pow10(i)) % 10); }

std::int64_t draw_number(Stream& s, const ArithConfig& c) {
  const int k = c.min_digits + static_cast<int>(s.below(c.max_digits - c.min_digits + 1));
  if (k == 1) return s.below(10);
  return pow10(k - 1) + s.below(pow10(k) - pow10(k - 1));
}

Problem draw_problem(Stream& s, const ArithConfig& c) {
  Problem p;
  p.op = c.ops[static_cast<std::size_t>(s.below(static_cast<std::int64_t>(c.ops.size())))];
  p.a = draw_number(s, c);
  if (p.op == Op::mul) {
    p.b = s.below(10);
  } else {
    p.b = draw_number(s, c);
    if (p.op == Op::sub && p.a < p.b) std::swap(p.a, p.b);
  }
  return p;
}

std::uint64_t pool_seed(std::uint64_t seed, Pool pool) {
  return splitmix64(seed ^ splitmix64(0x5EED0000ULL + static_cast<std::uint64_t>(pool)));
}

}  // namespace

std::int64_t Problem::answer() const {
  switch (op) {
    case Op::add: return a + b;
    case Op::sub: return a - b;
    case Op::mul: return a * b;
  }
  return 0;
}

std::string Problem::prompt_text() const { return std::to_string(a) + op_char(op) + std::to_string(b) + "\n"; }

std::string Problem::response_text() const {
  const int columns = std::max(digit_count(a), op == Op::mul ? 1 : digit_count(b));
  std::string out;
  int pass = 0;  // carry or borrow into the column
  for (int i = 0; i < columns; ++i) {
    const int x = digit_at(a, i);
    const int y = op == Op::mul ? static_cast<int>(b) : digit_at(b, i);
    int passed = 0, digit = 0;
    switch (op) {
      case Op::add: passed = (x + y + pass) / 10; digit = (x + y + pass) % 10; break;
      case Op::mul: passed = (x * y + pass) / 10; digit = (x * y + pass) % 10; break;
      case Op::sub: {
        const int diff = x - y - pass;
        passed = diff < 0 ? 1 : 0;
        digit = diff + 10 * passed;
        break;
      }
    }
    if (i > 0) out += ',';
    out += static_cast<char>('0' + x);
    out += op_char(op);
    out += static_cast<char>('0' + y);
    out += op == Op::sub ? '-' : '+';
    out += static_cast<char>('0' + pass);
    out += '=';
    out += static_cast<char>('0' + passed);
    out += static_cast<char>('0' + digit);
    pass = passed;
  }
  return out + "#" + std::to_string(answer());
}

void validate(const ArithConfig& c) {
  auto fail = [](const std::string& what) { throw std::invalid_argument("arith: " + what); };
  if (c.ops.empty()) fail("ops must name at least one operation");
  for (std::size_t i = 0; i < c.ops.size(); ++i)
    for (std::size_t j = i + 1; j < c.ops.size(); ++j)
      if (c.ops[i] == c.ops[j]) fail("ops lists " + op_name(c.ops[i]) + " twice");
  if (c.min_digits < 1 || c.min_digits > 9) fail("min_digits must lie in [1, 9], got " + std::to_string(c.min_digits));
  if (c.max_digits < c.min_digits || c.max_digits > 9)
    fail("max_digits must lie in [min_digits, 9], got " + std::to_string(c.max_digits));
}

std::string op_name(Op op) {
  switch (op) {
    case Op::add: return "add";
    case Op::sub: return "sub";
    case Op::mul: return "mul";
  }
  return "?";
}

std::optional<Op> op_from_name(std::string_view name) {
  if (name == "add") return Op::add;
  if (name == "sub") return Op::sub;
  if (name == "mul") return Op::mul;
  return std::nullopt;
}

std::vector<std::int64_t> encode(std::string_view text) {
  std::vector<std::int64_t> ids;
  ids.reserve(text.size());
  for (char ch : text) {
    const auto at = kSymbols.find(ch);
    if (at == std::string_view::npos)
      throw std::invalid_argument(std::string("arith: character '") + ch + "' is not in the vocabulary");
    ids.push_back(kFirstSymbol + static_cast<std::int64_t>(at));
  }
  return ids;
}

std::string decode(const std::vector<std::int64_t>& ids) {
  std::string out;
  for (auto id : ids) {
    if (id == kPad) out += "<pad>";
    else if (id == kBos) out += "<bos>";
    else if (id == kEos) out += "<eos>";
    else if (id >= kFirstSymbol && id < kVocabSize) out += kSymbols[static_cast<std::size_t>(id - kFirstSymbol)];
    else out += "<?>";
  }
  return out;
}

std::vector<std::int64_t> prompt_tokens(const Problem& p) {
  std::vector<std::int64_t> ids{kBos};
  for (auto id : encode(p.prompt_text())) ids.push_back(id);
  return ids;
}

std::vector<std::int64_t> response_tokens(const Problem& p) {
  auto ids = encode(p.response_text());
  ids.push_back(kEos);
  return ids;
}

std::int64_t max_prompt_tokens(const ArithConfig& c) {
  validate(c);
  const std::int64_t d = c.max_digits;
  std::int64_t longest = 0;
  for (Op op : c.ops) longest = std::max(longest, op == Op::mul ? d + 4 : 2 * d + 3);
  return longest;
}

std::int64_t max_response_tokens(const ArithConfig& c) {
  validate(c);
  const std::int64_t d = c.max_digits;
  std::int64_t longest = 0;
  for (Op op : c.ops) longest = std::max(longest, op == Op::sub ? 10 * d + 1 : 10 * d + 2);
  return longest;
}

std::optional<std::string> response_text(const std::vector<std::int64_t>& ids) {
  std::string out;
  for (auto id : ids) {
    if (id == kEos) return out;
    if (id < kFirstSymbol || id >= kVocabSize) return std::nullopt;
    out += kSymbols[static_cast<std::size_t>(id - kFirstSymbol)];
  }
  return std::nullopt;
}

std::optional<std::int64_t> parse_answer(std::string_view text) {
  const auto hash = text.find('#');
  if (hash == std::string_view::npos || text.find('#', hash + 1) != std::string_view::npos) return std::nullopt;
  const auto digits = text.substr(hash + 1);
  if (digits.empty() || digits.size() > 18) return std::nullopt;
  std::int64_t value = 0;
  for (char ch : digits) {
    if (ch < '0' || ch > '9') return std::nullopt;
    value = value * 10 + (ch - '0');
  }
  return value;
}

std::optional<std::int64_t> extract_answer(const std::vector<std::int64_t>& ids) {
  auto text = response_text(ids);
  if (!text) return std::nullopt;
  return parse_answer(*text);
}

std::string_view scratchpad(std::string_view text) { return text.substr(0, text.find('#')); }

bool is_correct(const Problem& p, std::optional<std::int64_t> answer) { return answer && *answer == p.answer(); }

Pool pool_of(const Problem& p) {
  std::int64_t x = p.a, y = p.b;
  if (p.op != Op::sub && x > y) std::swap(x, y);
  std::uint64_t key = splitmix64(static_cast<std::uint64_t>(p.op) + 1);
  key = splitmix64(key ^ static_cast<std::uint64_t>(x));
  key = splitmix64(key ^ static_cast<std::uint64_t>(y));
  const auto bucket = key % 100;
  if (bucket < 50) return Pool::train;
  if (bucket < 75) return Pool::rl;
  return Pool::eval;
}

std::vector<Problem> generate_pool(const ArithConfig& config, Pool pool, std::int64_t count, std::uint64_t seed) {
  validate(config);
  if (count < 0) throw std::invalid_argument("arith: a pool cannot hold a negative count");
  Stream stream(pool_seed(seed, pool));
  std::vector<Problem> out;
  std::set<std::tuple<int, std::int64_t, std::int64_t>> seen;
  const std::int64_t max_attempts = 200 * count + 100000;
  for (std::int64_t attempt = 0; static_cast<std::int64_t>(out.size()) < count; ++attempt) {
    if (attempt >= max_attempts)
      throw std::invalid_argument("arith: could draw only " + std::to_string(out.size()) + " distinct problems of " +
                                  std::to_string(count) + " for this pool; widen the digit range or the ops");
    auto p = draw_problem(stream, config);
    if (pool_of(p) != pool) continue;
    if (!seen.insert({static_cast<int>(p.op), p.a, p.b}).second) continue;
    out.push_back(p);
  }
  return out;
}

}  // namespace reglab::data::arith
