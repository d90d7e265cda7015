#pragma once
// seqmix::error and the one helper that raises it. Every operator validates its
// arguments before touching an output; messages always name operator, argument,
// what was expected and what was given. Messages are built only when a check fails.
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <stdexcept>
#include <string>

#include "abi.hpp"

namespace seqmix {

class error : public std::invalid_argument {
public:
    using std::invalid_argument::invalid_argument;
};

SEQMIX_ABI_BEGIN

// Throws seqmix::error (or prints and aborts when built with -fno-exceptions).
[[noreturn]] inline void raise(const std::string& message) {
#if defined(__cpp_exceptions) || defined(__EXCEPTIONS)
    throw error(message);
#else
    std::fprintf(stderr, "seqmix::error: %s\n", message.c_str());
    std::abort();
#endif
}

namespace detail {
template <class... Parts>
std::string concat(const Parts&... parts) {
    std::ostringstream os;
    (os << ... << parts);
    return os.str();
}
}  // namespace detail

// "op: argument 'arg': expected <expected>, given <given>". Cold: only failing checks get here.
template <class Expected, class Given>
[[noreturn]] __attribute__((noinline, cold)) void fail(const char* op, const char* arg, const Expected& expected,
                                                       const Given& given) {
    raise(detail::concat(op, ": argument '", arg, "': expected ", expected, ", given ", given));
}

// The error-checking helper: `check(cond, "softmax_attention", "k", "extent 3 == 64", 63)`
// gives "softmax_attention: argument 'k': expected extent 3 == 64, given 63". Pass cheap
// values (literals, numbers); where the text must be assembled, write
// `if (!cond) fail(op, arg, detail::concat(...), given);` so that it is built only on failure.
template <class Expected, class Given>
inline void check(bool ok, const char* op, const char* arg, const Expected& expected, const Given& given) {
    if (__builtin_expect(!ok, 0)) fail(op, arg, expected, given);
}

SEQMIX_ABI_END
}  // namespace seqmix
