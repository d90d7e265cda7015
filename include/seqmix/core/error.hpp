#pragma once
// seqmix::error and the one helper that raises it. Every operator validates its
// arguments before touching an output; messages always name operator, argument,
// what was expected and what was given.
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <stdexcept>
#include <string>

namespace seqmix {

class error : public std::invalid_argument {
public:
    using std::invalid_argument::invalid_argument;
};

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

// The error-checking helper: `check(cond, "softmax_attention", "k", "extent 3 == 64", "63")`
// gives "softmax_attention: argument 'k': expected extent 3 == 64, given 63".
template <class Expected, class Given>
inline void check(bool ok, const char* op, const char* arg, const Expected& expected,
                  const Given& given) {
    if (!ok)
        raise(detail::concat(op, ": argument '", arg, "': expected ", expected, ", given ",
                             given));
}

}  // namespace seqmix
