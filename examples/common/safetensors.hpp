#pragma once
// A reader of Hugging Face safetensors files (model.safetensors): an 8-byte little-endian
// header length, a JSON header {name: {"dtype", "shape", "data_offsets": [begin, end]}, ...,
// "__metadata__": {...}}, then the tensors' bytes. The whole file is checked when opened
// (truncated files and headers, bad JSON, unknown dtypes, offsets that do not match shapes),
// and every error names the file and the tensor. Float tensors are read as float, converted
// from F32, F16, BF16 or F64; tensors a block does not ask for (an int64 position_ids buffer)
// are never converted.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "json.hpp"

namespace seqmix_examples {

// IEEE half and bfloat16 bits to float.
inline float bf16_to_float(std::uint16_t h) {
    const std::uint32_t u = std::uint32_t(h) << 16;
    float f;
    std::memcpy(&f, &u, sizeof f);
    return f;
}
inline float fp16_to_float(std::uint16_t h) {
    const std::uint32_t sign = std::uint32_t(h & 0x8000u) << 16, exp = (h >> 10) & 0x1Fu, man = h & 0x3FFu;
    std::uint32_t u;
    if (exp == 0x1F) {
        u = sign | 0x7F800000u | (man << 13);  // Inf, NaN
    } else if (exp != 0) {
        u = sign | ((exp + 112) << 23) | (man << 13);
    } else if (man == 0) {
        u = sign;
    } else {  // subnormal half: man x 2^-24
        const float f = std::ldexp(float(man), -24);
        return sign ? -f : f;
    }
    float f;
    std::memcpy(&f, &u, sizeof f);
    return f;
}

inline std::string shape_text(const std::vector<std::int64_t>& shape) {
    std::ostringstream o;
    o << "[";
    for (std::size_t i = 0; i < shape.size(); ++i) o << (i ? ", " : "") << shape[i];
    o << "]";
    return o.str();
}

class safetensors {
public:
    struct entry {
        std::string dtype;
        std::vector<std::int64_t> shape;
        std::size_t begin = 0, end = 0;  // byte range within the data section
    };

    explicit safetensors(const std::string& path) : path_(path) {
        std::ifstream in(path, std::ios::binary);
        if (!in) throw load_error(path + ": cannot open the file");
        bytes_.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
        if (bytes_.size() < 8)
            throw load_error(path + ": truncated file (" + std::to_string(bytes_.size()) +
                             " bytes; a safetensors file starts with an 8-byte header length)");
        std::uint64_t n = 0;
        for (int i = 7; i >= 0; --i) n = n << 8 | std::uint8_t(bytes_[std::size_t(i)]);
        if (n > bytes_.size() - 8)
            throw load_error(path + ": truncated header (" + std::to_string(n) + " bytes announced, " +
                             std::to_string(bytes_.size() - 8) + " in the file)");
        data_ = 8 + std::size_t(n);
        const json header = json::parse(std::string(bytes_.data() + 8, std::size_t(n)), path + " (header)");
        if (header.type != json::kind::object) throw load_error(path + ": the header is not a JSON object");
        for (const auto& [name, t] : header.fields) {
            if (name == "__metadata__") continue;
            const std::string where = path + ": tensor '" + name + "'";
            if (!t.has("dtype") || !t.has("shape") || !t.has("data_offsets"))
                throw load_error(where + ": expected dtype, shape and data_offsets");
            entry e;
            e.dtype = t.at("dtype").text();
            const std::size_t width = dtype_size(e.dtype);
            if (width == 0) throw load_error(where + ": unknown dtype '" + e.dtype + "'");
            std::int64_t count = 1;
            for (const json& d : t.at("shape").items) {
                const std::int64_t x = d.integer();
                if (x < 0) throw load_error(where + ": negative extent in its shape");
                e.shape.push_back(x);
                count *= x;
            }
            const auto& off = t.at("data_offsets").items;
            if (off.size() != 2) throw load_error(where + ": data_offsets must hold [begin, end]");
            const std::int64_t b = off[0].integer(), end = off[1].integer();
            if (b < 0 || end < b || std::uint64_t(end) > bytes_.size() - data_) {
                throw load_error(where + ": truncated file (bytes [" + std::to_string(b) + ", " + std::to_string(end) +
                                 ") of a data section of " + std::to_string(bytes_.size() - data_) + ")");
            }
            if (std::uint64_t(end - b) != std::uint64_t(count) * width)
                throw load_error(where + ": " + std::to_string(end - b) + " bytes for shape " + shape_text(e.shape) +
                                 " of " + e.dtype + " (" + std::to_string(count * std::int64_t(width)) + " expected)");
            e.begin = std::size_t(b);
            e.end = std::size_t(end);
            entries_[name] = e;
        }
    }

    const std::string& path() const { return path_; }
    bool has(const std::string& name) const { return entries_.count(name) != 0; }
    const entry& info(const std::string& name) const {
        auto it = entries_.find(name);
        if (it == entries_.end()) throw load_error(path_ + ": missing tensor '" + name + "'");
        return it->second;
    }
    std::vector<std::string> names() const {
        std::vector<std::string> n;
        for (const auto& kv : entries_) n.push_back(kv.first);
        return n;
    }

    // Tensor `name` as float, row-major; its shape must be `expected`.
    std::vector<float> floats(const std::string& name, const std::vector<std::int64_t>& expected) const {
        const entry& e = info(name);
        if (e.shape != expected)
            throw load_error(path_ + ": tensor '" + name + "': expected shape " + shape_text(expected) + ", given " +
                             shape_text(e.shape));
        const char* p = bytes_.data() + data_ + e.begin;
        const std::size_t width = dtype_size(e.dtype), n = (e.end - e.begin) / width;
        std::vector<float> out(n);
        for (std::size_t i = 0; i < n; ++i) {
            if (e.dtype == "F32") {
                std::memcpy(&out[i], p + 4 * i, 4);
            } else if (e.dtype == "F64") {
                double d;
                std::memcpy(&d, p + 8 * i, 8);
                out[i] = float(d);
            } else if (e.dtype == "F16" || e.dtype == "BF16") {
                std::uint16_t h;
                std::memcpy(&h, p + 2 * i, 2);
                out[i] = e.dtype == "F16" ? fp16_to_float(h) : bf16_to_float(h);
            } else {
                throw load_error(path_ + ": tensor '" + name + "': dtype " + e.dtype + " is not a float tensor");
            }
        }
        return out;
    }

private:
    static std::size_t dtype_size(const std::string& t) {
        static const std::map<std::string, std::size_t> sizes = {
            {"F64", 8}, {"F32", 4},  {"F16", 2}, {"BF16", 2}, {"I64", 8}, {"I32", 4},     {"I16", 2},    {"I8", 1},
            {"U8", 1},  {"BOOL", 1}, {"U16", 2}, {"U32", 4},  {"U64", 8}, {"F8_E4M3", 1}, {"F8_E5M2", 1}};
        auto it = sizes.find(t);
        return it == sizes.end() ? 0 : it->second;
    }

    std::string path_;
    std::vector<char> bytes_;
    std::size_t data_ = 0;
    std::map<std::string, entry> entries_;
};

}  // namespace seqmix_examples
