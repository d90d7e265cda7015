#pragma once
// A small JSON reader for the examples: config.json files and safetensors headers. Values are
// null, booleans, numbers (double), strings, arrays and objects; a syntax error throws
// load_error naming the file and the byte where it happened.
#include <cctype>
#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace seqmix_examples {

// Every error of the example loaders: what failed, naming the file (and tensor).
struct load_error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

struct json {
    enum class kind { null, boolean, number, string, array, object };
    kind type = kind::null;
    bool b = false;
    double num = 0;
    std::string str;
    std::vector<json> items;
    std::map<std::string, json> fields;

    bool has(const std::string& key) const { return type == kind::object && fields.count(key) != 0; }
    const json& at(const std::string& key) const {
        auto it = fields.find(key);
        if (type != kind::object || it == fields.end()) throw load_error("json: no field '" + key + "'");
        return it->second;
    }
    double number() const {
        if (type != kind::number) throw load_error("json: expected a number");
        return num;
    }
    // A number, or transformers 5's {"__float__": "Infinity"} form of a non-finite one.
    double real() const {
        if (type == kind::object && has("__float__")) {
            const std::string& t = at("__float__").text();
            if (t == "Infinity") return std::numeric_limits<double>::infinity();
            if (t == "-Infinity") return -std::numeric_limits<double>::infinity();
            if (t == "NaN") return std::numeric_limits<double>::quiet_NaN();
            throw load_error("json: bad __float__ value '" + t + "'");
        }
        return number();
    }
    std::int64_t integer() const {
        const double x = number();
        if (x != double(std::int64_t(x))) throw load_error("json: expected an integer, given " + std::to_string(x));
        return std::int64_t(x);
    }
    const std::string& text() const {
        if (type != kind::string) throw load_error("json: expected a string");
        return str;
    }
    // Optional fields with defaults (config.json leaves many out).
    double number_or(const std::string& key, double fallback) const { return has(key) ? at(key).number() : fallback; }
    std::int64_t integer_or(const std::string& key, std::int64_t fallback) const {
        return has(key) ? at(key).integer() : fallback;
    }
    std::string text_or(const std::string& key, const std::string& fallback) const {
        return has(key) ? at(key).text() : fallback;
    }
    bool boolean_or(const std::string& key, bool fallback) const {
        if (!has(key)) return fallback;
        if (at(key).type != kind::boolean) throw load_error("json: field '" + key + "' is not a boolean");
        return at(key).b;
    }

    // Parses text; `where` names its source in errors.
    static json parse(const std::string& text, const std::string& where) {
        parser p{text, 0, where};
        json v = p.value(0);
        p.space();
        if (p.at != text.size()) p.fail("trailing characters");
        return v;
    }

private:
    struct parser {
        const std::string& s;
        std::size_t at;
        const std::string& where;

        [[noreturn]] void fail(const std::string& what) const {
            throw load_error(where + ": bad JSON at byte " + std::to_string(at) + ": " + what);
        }
        void space() {
            while (at < s.size() && std::isspace(static_cast<unsigned char>(s[at]))) ++at;
        }
        bool take(char c) {
            space();
            if (at < s.size() && s[at] == c) return ++at, true;
            return false;
        }
        void expect(char c) {
            if (!take(c)) fail(std::string("expected '") + c + "'");
        }
        json value(int depth) {
            if (depth > 64) fail("nesting deeper than 64");
            space();
            if (at >= s.size()) fail("unexpected end");
            json v;
            const char c = s[at];
            if (c == '{') {
                ++at;
                v.type = kind::object;
                if (take('}')) return v;
                do {
                    space();
                    std::string key = string_body();
                    expect(':');
                    v.fields[key] = value(depth + 1);
                } while (take(','));
                expect('}');
            } else if (c == '[') {
                ++at;
                v.type = kind::array;
                if (take(']')) return v;
                do v.items.push_back(value(depth + 1));
                while (take(','));
                expect(']');
            } else if (c == '"') {
                v.type = kind::string;
                v.str = string_body();
            } else if (s.compare(at, 4, "true") == 0 || s.compare(at, 5, "false") == 0) {
                v.type = kind::boolean;
                v.b = s[at] == 't';
                at += v.b ? 4 : 5;
            } else if (s.compare(at, 4, "null") == 0) {
                at += 4;
            } else if (s.compare(at, 8, "Infinity") == 0 || s.compare(at, 9, "-Infinity") == 0 ||
                       s.compare(at, 3, "NaN") == 0) {
                // Python's json writes these (Mamba-2's time_step_limit is [0.0, Infinity]).
                v.type = kind::number;
                const bool negative = s[at] == '-', nan = s[at] == 'N';
                v.num = nan ? std::numeric_limits<double>::quiet_NaN()
                            : (negative ? -1 : 1) * std::numeric_limits<double>::infinity();
                at += nan ? 3 : negative ? 9 : 8;
            } else {
                v.type = kind::number;
                const std::size_t start = at;
                while (at < s.size() && (std::isdigit(static_cast<unsigned char>(s[at])) || s[at] == '-' ||
                                         s[at] == '+' || s[at] == '.' || s[at] == 'e' || s[at] == 'E'))
                    ++at;
                if (start == at) fail(std::string("unexpected character '") + c + "'");
                try {
                    std::size_t used = 0;
                    v.num = std::stod(s.substr(start, at - start), &used);
                    if (used != at - start) fail("bad number");
                } catch (const std::logic_error&) {
                    at = start;
                    fail("bad number");
                }
            }
            return v;
        }
        std::string string_body() {
            if (at >= s.size() || s[at] != '"') fail("expected a string");
            ++at;
            std::string out;
            while (true) {
                if (at >= s.size()) fail("unterminated string");
                const char c = s[at++];
                if (c == '"') return out;
                if (c != '\\') {
                    out += c;
                    continue;
                }
                if (at >= s.size()) fail("unterminated escape");
                const char e = s[at++];
                switch (e) {
                    case '"':
                    case '\\':
                    case '/': out += e; break;
                    case 'b': out += '\b'; break;
                    case 'f': out += '\f'; break;
                    case 'n': out += '\n'; break;
                    case 'r': out += '\r'; break;
                    case 't': out += '\t'; break;
                    case 'u': {
                        if (at + 4 > s.size()) fail("short \\u escape");
                        for (std::size_t h = at; h < at + 4; ++h)
                            if (!std::isxdigit(static_cast<unsigned char>(s[h]))) fail("bad \\u escape");
                        const unsigned cp = unsigned(std::stoul(s.substr(at, 4), nullptr, 16));
                        at += 4;
                        if (cp < 0x80) {  // UTF-8 of the code point (surrogate pairs kept as given)
                            out += char(cp);
                        } else if (cp < 0x800) {
                            out += char(0xC0 | (cp >> 6));
                            out += char(0x80 | (cp & 0x3F));
                        } else {
                            out += char(0xE0 | (cp >> 12));
                            out += char(0x80 | ((cp >> 6) & 0x3F));
                            out += char(0x80 | (cp & 0x3F));
                        }
                        break;
                    }
                    default: fail(std::string("bad escape '\\") + e + "'");
                }
            }
        }
    };
};

}  // namespace seqmix_examples
