// The arithmetic task family: scratchpads written out by hand (carries,
// borrows, missing digits), the tokenizer, the answer parser on valid, invalid
// and garbage responses, and the train / rl / eval pools.
#include "data/arith.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <set>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

namespace {

using namespace reglab::data::arith;

Problem problem(Op op, std::int64_t a, std::int64_t b) { return Problem{op, a, b}; }

TEST(Arith, AdditionScratchpadWithCarries) {
  EXPECT_EQ(problem(Op::add, 345, 678).prompt_text(), "345+678\n");
  EXPECT_EQ(problem(Op::add, 345, 678).response_text(), "5+8+0=13,4+7+1=12,3+6+1=10#1023");
  EXPECT_EQ(problem(Op::add, 95, 7).response_text(), "5+7+0=12,9+0+1=10#102");
  EXPECT_EQ(problem(Op::add, 7, 95).response_text(), "7+5+0=12,0+9+1=10#102");
  EXPECT_EQ(problem(Op::add, 999, 1).response_text(), "9+1+0=10,9+0+1=10,9+0+1=10#1000");
  EXPECT_EQ(problem(Op::add, 123, 456).response_text(), "3+6+0=09,2+5+0=07,1+4+0=05#579");
  EXPECT_EQ(problem(Op::add, 0, 0).response_text(), "0+0+0=00#0");
}

TEST(Arith, SubtractionScratchpadWithBorrows) {
  EXPECT_EQ(problem(Op::sub, 345, 178).prompt_text(), "345-178\n");
  EXPECT_EQ(problem(Op::sub, 345, 178).response_text(), "5-8-0=17,4-7-1=16,3-1-1=01#167");
  EXPECT_EQ(problem(Op::sub, 1000, 1).response_text(), "0-1-0=19,0-0-1=19,0-0-1=19,1-0-1=00#999");
  EXPECT_EQ(problem(Op::sub, 52, 52).response_text(), "2-2-0=00,5-5-0=00#0");
  EXPECT_EQ(problem(Op::sub, 86, 23).response_text(), "6-3-0=03,8-2-0=06#63");
}

TEST(Arith, MultiplicationByOneDigitWithCarries) {
  EXPECT_EQ(problem(Op::mul, 345, 7).prompt_text(), "345*7\n");
  EXPECT_EQ(problem(Op::mul, 345, 7).response_text(), "5*7+0=35,4*7+3=31,3*7+3=24#2415");
  EXPECT_EQ(problem(Op::mul, 99, 9).response_text(), "9*9+0=81,9*9+8=89#891");
  EXPECT_EQ(problem(Op::mul, 12, 0).response_text(), "2*0+0=00,1*0+0=00#0");
  EXPECT_EQ(problem(Op::mul, 8, 1).response_text(), "8*1+0=08#8");
}

TEST(Arith, TokensAndLengths) {
  // <bos>=1, '3'..'8' = 6..11, '+'=13, '\n'=19.
  EXPECT_EQ(prompt_tokens(problem(Op::add, 345, 678)), (std::vector<std::int64_t>{1, 6, 7, 8, 13, 9, 10, 11, 19}));
  auto r = response_tokens(problem(Op::add, 345, 678));
  EXPECT_EQ(r.size(), 32u);  // 31 characters + <eos>
  EXPECT_EQ(r.back(), kEos);
  EXPECT_EQ(encode("0-*=,#"), (std::vector<std::int64_t>{3, 14, 15, 16, 17, 18}));
  EXPECT_EQ(decode({1, 4, 13, 5, 19, 2, 0}), "<bos>1+2\n<eos><pad>");
  EXPECT_THROW(encode("1 + 2"), std::invalid_argument);
  EXPECT_THROW(encode("x"), std::invalid_argument);

  ArithConfig three{{Op::add}, 1, 3};
  EXPECT_EQ(max_response_tokens(three), 32);  // 9·3 + 4 + 1
  EXPECT_EQ(max_prompt_tokens(three), 9);     // <bos> 3 + 3 \n
  ArithConfig four{{Op::add, Op::sub}, 4, 4};
  EXPECT_EQ(max_response_tokens(four), 42);
  ArithConfig mul{{Op::mul}, 1, 3};
  EXPECT_EQ(max_prompt_tokens(mul), 7);       // <bos> 3 * 1 \n
  EXPECT_EQ(max_response_tokens(mul), 32);    // 999·9 = 8991
  ArithConfig sub{{Op::sub}, 3, 3};
  EXPECT_EQ(max_response_tokens(sub), 31);
}

TEST(Arith, ParserOnValidInvalidAndGarbage) {
  EXPECT_EQ(parse_answer("5+8+0=13,4+7+1=12,3+6+1=10#1023"), 1023);
  EXPECT_EQ(parse_answer("#42"), 42);
  EXPECT_EQ(parse_answer("nonsense,=,#0"), 0);  // the scratchpad is not checked
  EXPECT_EQ(parse_answer("#007"), 7);
  EXPECT_EQ(parse_answer("#123456789012345678"), 123456789012345678);
  EXPECT_EQ(parse_answer(""), std::nullopt);
  EXPECT_EQ(parse_answer("5+8+0=13"), std::nullopt);                // no separator
  EXPECT_EQ(parse_answer("5+8+0=13#"), std::nullopt);               // nothing after it
  EXPECT_EQ(parse_answer("#12#3"), std::nullopt);                   // two separators
  EXPECT_EQ(parse_answer("#12,"), std::nullopt);
  EXPECT_EQ(parse_answer("#-5"), std::nullopt);
  EXPECT_EQ(parse_answer("#1234567890123456789"), std::nullopt);    // 19 digits
  EXPECT_EQ(parse_answer("garbage!!"), std::nullopt);
  EXPECT_EQ(parse_answer("#12\n"), std::nullopt);

  auto ids = encode("1+1+0=02#2");
  auto with_eos = ids;
  with_eos.push_back(kEos);
  EXPECT_EQ(extract_answer(with_eos), 2);
  EXPECT_EQ(extract_answer(ids), std::nullopt);  // cut off: no <eos>
  auto trailing = with_eos;
  trailing.insert(trailing.end(), {kPad, 18, 5});
  EXPECT_EQ(extract_answer(trailing), 2);  // what follows <eos> is ignored
  auto padded = ids;
  padded.insert(padded.begin() + 3, kPad);
  padded.push_back(kEos);
  EXPECT_EQ(extract_answer(padded), std::nullopt);
  EXPECT_EQ(extract_answer({kBos, 18, 5, kEos}), std::nullopt);
  EXPECT_EQ(extract_answer({kEos}), std::nullopt);
  EXPECT_EQ(response_text(with_eos), "1+1+0=02#2");

  EXPECT_EQ(scratchpad("5+8+0=13#13"), "5+8+0=13");
  EXPECT_EQ(scratchpad("5+8"), "5+8");
  EXPECT_TRUE(is_correct(problem(Op::sub, 345, 178), 167));
  EXPECT_FALSE(is_correct(problem(Op::sub, 345, 178), 166));
  EXPECT_FALSE(is_correct(problem(Op::sub, 345, 178), std::nullopt));
  // Every generated response parses back to its answer.
  for (const auto& p : generate_pool({{Op::add, Op::sub, Op::mul}, 1, 4}, Pool::train, 300, 3))
    EXPECT_EQ(extract_answer(response_tokens(p)), p.answer()) << p.prompt_text();
}

using Key = std::tuple<int, std::int64_t, std::int64_t>;
Key canonical(const Problem& p) {
  auto x = p.a, y = p.b;
  if (p.op != Op::sub && x > y) std::swap(x, y);
  return {static_cast<int>(p.op), x, y};
}

TEST(Arith, PoolsNeverOverlap) {
  ArithConfig c{{Op::add, Op::sub, Op::mul}, 1, 3};
  std::set<Key> train, rl, eval;
  for (std::uint64_t seed : {1u, 2u, 3u}) {
    for (const auto& p : generate_pool(c, Pool::train, 2000, seed)) train.insert(canonical(p));
    for (const auto& p : generate_pool(c, Pool::rl, 1000, seed)) rl.insert(canonical(p));
    for (const auto& p : generate_pool(c, Pool::eval, 1000, seed)) eval.insert(canonical(p));
  }
  // An out-of-domain eval pool (more digits, and the same ops at 1–4 digits).
  for (const auto& p : generate_pool({{Op::add, Op::sub, Op::mul}, 1, 4}, Pool::eval, 1000, 9))
    eval.insert(canonical(p));
  for (const auto& k : rl) EXPECT_FALSE(train.contains(k));
  for (const auto& k : eval) EXPECT_FALSE(train.contains(k) || rl.contains(k));
  // Commuted twins share a pool; subtraction is not commutative.
  EXPECT_EQ(pool_of(problem(Op::add, 3, 4)), pool_of(problem(Op::add, 4, 3)));
  EXPECT_EQ(pool_of(problem(Op::mul, 3, 7)), pool_of(problem(Op::mul, 7, 3)));
  EXPECT_EQ(pool_of(problem(Op::add, 123, 7)), pool_of(problem(Op::add, 7, 123)));
  // The split over the whole 2-digit addition space is near 50 / 25 / 25.
  int counts[3] = {0, 0, 0};
  for (int a = 10; a < 100; ++a)
    for (int b = 10; b < 100; ++b) ++counts[static_cast<int>(pool_of(problem(Op::add, a, b)))];
  EXPECT_NEAR(counts[0] / 8100.0, 0.50, 0.03);
  EXPECT_NEAR(counts[1] / 8100.0, 0.25, 0.03);
  EXPECT_NEAR(counts[2] / 8100.0, 0.25, 0.03);
}

TEST(Arith, PoolsAreDeterministicDistinctAndPrefixStable) {
  ArithConfig c{{Op::add, Op::mul}, 2, 3};
  auto a = generate_pool(c, Pool::rl, 500, 42);
  auto b = generate_pool(c, Pool::rl, 500, 42);
  auto other = generate_pool(c, Pool::rl, 500, 43);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, other);
  auto prefix = generate_pool(c, Pool::rl, 100, 42);
  EXPECT_EQ(prefix, std::vector<Problem>(a.begin(), a.begin() + 100));
  std::set<Key> seen;
  for (const auto& p : a) {
    EXPECT_TRUE(seen.insert({static_cast<int>(p.op), p.a, p.b}).second) << "duplicate " << p.prompt_text();
    EXPECT_EQ(pool_of(p), Pool::rl);
  }
}

TEST(Arith, ConfigSetsDigitsAndOps) {
  int per_op[3] = {0, 0, 0};
  for (const auto& p : generate_pool({{Op::sub, Op::mul}, 4, 4}, Pool::eval, 400, 1)) {
    ++per_op[static_cast<int>(p.op)];
    EXPECT_GE(p.a, 1000);
    EXPECT_LE(p.a, 9999);
    if (p.op == Op::sub) {
      EXPECT_GE(p.b, 1000);
      EXPECT_GE(p.a, p.b);
    } else {
      EXPECT_LE(p.b, 9);
    }
  }
  EXPECT_EQ(per_op[static_cast<int>(Op::add)], 0);
  EXPECT_GT(per_op[static_cast<int>(Op::sub)], 150);
  EXPECT_GT(per_op[static_cast<int>(Op::mul)], 150);
  // In-domain 1–2 digits never draws 3-digit operands.
  for (const auto& p : generate_pool({{Op::add}, 1, 2}, Pool::train, 1000, 5)) {
    EXPECT_LT(p.a, 100);
    EXPECT_LT(p.b, 100);
  }
  // 1-digit addition has 100 ordered problems, about half in train: 100 cannot be drawn.
  EXPECT_THROW(generate_pool({{Op::add}, 1, 1}, Pool::train, 100, 1), std::invalid_argument);

  EXPECT_THROW(validate({{}, 1, 3}), std::invalid_argument);
  EXPECT_THROW(validate({{Op::add, Op::add}, 1, 3}), std::invalid_argument);
  EXPECT_THROW(validate({{Op::add}, 0, 3}), std::invalid_argument);
  EXPECT_THROW(validate({{Op::add}, 3, 2}), std::invalid_argument);
  EXPECT_THROW(validate({{Op::add}, 1, 10}), std::invalid_argument);
  EXPECT_NO_THROW(validate({{Op::mul}, 9, 9}));
  EXPECT_EQ(op_from_name("sub"), Op::sub);
  EXPECT_EQ(op_from_name("div"), std::nullopt);
  EXPECT_EQ(op_name(Op::mul), "mul");
}

}  // namespace
