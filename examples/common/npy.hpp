#pragma once
// NumPy .npy files for the examples' inputs and outputs: token ids (int32 / int64) and float32
// arrays, C order, format versions 1 to 3. Errors name the file.
#include <cstdint>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "json.hpp"

namespace seqmix_examples {

struct npy_array {
    std::string descr;  // '<f4', '<i4', '<i8'
    std::vector<std::int64_t> shape;
    std::vector<char> bytes;

    std::int64_t count() const {
        std::int64_t n = 1;
        for (auto x : shape) n *= x;
        return n;
    }
    std::vector<float> floats() const {
        if (descr != "<f4") throw load_error("npy: expected float32 ('<f4'), given '" + descr + "'");
        std::vector<float> v(static_cast<std::size_t>(count()));
        std::memcpy(v.data(), bytes.data(), v.size() * sizeof(float));
        return v;
    }
    std::vector<std::int64_t> integers() const {
        std::vector<std::int64_t> v(static_cast<std::size_t>(count()));
        for (std::size_t i = 0; i < v.size(); ++i) {
            if (descr == "<i8") {
                std::memcpy(&v[i], bytes.data() + 8 * i, 8);
            } else if (descr == "<i4") {
                std::int32_t x;
                std::memcpy(&x, bytes.data() + 4 * i, 4);
                v[i] = x;
            } else {
                throw load_error("npy: expected int32 or int64 ('<i4', '<i8'), given '" + descr + "'");
            }
        }
        return v;
    }
};

inline npy_array read_npy(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw load_error(path + ": cannot open the file");
    std::vector<char> b((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (b.size() < 10 || std::memcmp(b.data(), "\x93NUMPY", 6) != 0) throw load_error(path + ": not a .npy file");
    const int major = std::uint8_t(b[6]);
    const std::size_t len_bytes = major == 1 ? 2 : 4, start = 8 + len_bytes;
    if (b.size() < start) throw load_error(path + ": truncated header");
    std::size_t len = 0;
    for (std::size_t i = len_bytes; i-- > 0;) len = len << 8 | std::uint8_t(b[8 + i]);
    if (b.size() < start + len) throw load_error(path + ": truncated header");
    const std::string h(b.data() + start, len);
    auto field = [&](const std::string& key) {  // the text after 'key':
        const std::size_t at = h.find("'" + key + "'");
        if (at == std::string::npos) throw load_error(path + ": header without '" + key + "'");
        std::size_t v = h.find(':', at) + 1;
        while (v < h.size() && h[v] == ' ') ++v;
        return v;
    };
    npy_array a;
    std::size_t d = field("descr");
    if (d >= h.size() || h[d] != '\'') throw load_error(path + ": bad descr");
    a.descr = h.substr(d + 1, h.find('\'', d + 1) - d - 1);
    if (h.compare(field("fortran_order"), 4, "True") == 0) throw load_error(path + ": Fortran order is not read");
    std::size_t s = field("shape");
    if (s >= h.size() || h[s] != '(') throw load_error(path + ": bad shape");
    for (std::size_t i = s + 1; i < h.size() && h[i] != ')';) {
        if (h[i] == ',' || h[i] == ' ') {
            ++i;
            continue;
        }
        std::size_t used = 0;
        a.shape.push_back(std::stoll(h.substr(i), &used));
        i += used;
    }
    const std::size_t width = a.descr == "<i8" ? 8 : a.descr == "<f4" || a.descr == "<i4" ? 4 : 0;
    if (width == 0) throw load_error(path + ": dtype '" + a.descr + "' is not read (float32, int32, int64)");
    const std::size_t need = std::size_t(a.count()) * width;
    if (b.size() < start + len + need) throw load_error(path + ": truncated data");
    a.bytes.assign(b.begin() + std::ptrdiff_t(start + len), b.begin() + std::ptrdiff_t(start + len + need));
    return a;
}

inline void write_npy(const std::string& path, const std::vector<float>& v, const std::vector<std::int64_t>& shape) {
    std::string h = "{'descr': '<f4', 'fortran_order': False, 'shape': (";
    for (std::size_t i = 0; i < shape.size(); ++i)
        h += std::to_string(shape[i]) + (shape.size() == 1 || i + 1 < shape.size() ? ", " : "");
    h += "), }";
    while ((10 + h.size() + 1) % 64 != 0) h += ' ';
    h += '\n';
    std::ofstream out(path, std::ios::binary);
    if (!out) throw load_error(path + ": cannot write the file");
    const char magic[8] = {'\x93', 'N', 'U', 'M', 'P', 'Y', 1, 0};
    out.write(magic, 8);
    const std::uint16_t len = std::uint16_t(h.size());
    const char lb[2] = {char(len & 0xFF), char(len >> 8)};
    out.write(lb, 2);
    out.write(h.data(), std::streamsize(h.size()));
    out.write(reinterpret_cast<const char*>(v.data()), std::streamsize(v.size() * sizeof(float)));
}

}  // namespace seqmix_examples
