// The examples' loaders (examples/common): safetensors files good and bad (every error names
// the file and the tensor), JSON, .npy round trips, half and bfloat16 conversion.
#include "common/json.hpp"
#include "common/npy.hpp"
#include "common/safetensors.hpp"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "catch.hpp"

using namespace seqmix_examples;

namespace {

std::string temp_path(const std::string& name) {
    static const auto dir = [] {
        auto d = std::filesystem::temp_directory_path() /
                 ("seqmix_loaders_" + std::to_string(std::uintptr_t(&temp_path) % 100000) + "_" +
                  std::to_string(std::hash<std::string>{}(std::filesystem::current_path().string()) % 100000));
        std::filesystem::create_directories(d);
        return d;
    }();
    return (dir / name).string();
}

void write_file(const std::string& path, const std::string& bytes) {
    std::ofstream(path, std::ios::binary).write(bytes.data(), std::streamsize(bytes.size()));
}

// A safetensors file from a header text and a data section.
std::string safetensors_bytes(const std::string& header, const std::string& data) {
    std::string b(8, '\0');
    std::uint64_t n = header.size();
    for (int i = 0; i < 8; ++i) b[std::size_t(i)] = char((n >> (8 * i)) & 0xFF);
    return b + header + data;
}

template <class T>
std::string raw(const std::vector<T>& v) {
    return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
}

template <class F>
void expect_load_error(F&& f, const std::string& needle) {
    try {
        f();
        FAIL("expected load_error mentioning " << needle);
    } catch (const load_error& e) {
        INFO(e.what());
        CHECK(std::string(e.what()).find(needle) != std::string::npos);
    }
}

}  // namespace

TEST_CASE("safetensors: float tensors in F32, BF16, F16 and F64; other tensors skipped unless asked for") {
    const std::vector<float> a = {1.5f, -2.0f, 0.25f, 3.0f, -0.0f, 1e-3f};
    const std::vector<std::uint16_t> bf = {0x3F80, 0xC040, 0x7F80, 0x0001};  // 1, -3, inf, a subnormal
    const std::vector<std::uint16_t> hf = {0x3C00, 0x0001, 0x7BFF, 0xFC00};  // 1, 2^-24, 65504, -inf
    const std::vector<double> dd = {0.1, -7.0};
    const std::vector<std::int64_t> ids = {0, 1, 2, 3, 4};
    std::string data = raw(a) + raw(bf) + raw(hf) + raw(dd) + raw(ids);
    const std::string header =
        "{\"__metadata__\": {\"format\": \"pt\"},"
        " \"w\": {\"dtype\": \"F32\", \"shape\": [2, 3], \"data_offsets\": [0, 24]},"
        " \"b\": {\"dtype\": \"BF16\", \"shape\": [4], \"data_offsets\": [24, 32]},"
        " \"h\": {\"dtype\": \"F16\", \"shape\": [2, 2], \"data_offsets\": [32, 40]},"
        " \"d\": {\"dtype\": \"F64\", \"shape\": [2], \"data_offsets\": [40, 56]},"
        " \"position_ids\": {\"dtype\": \"I64\", \"shape\": [1, 5], \"data_offsets\": [56, 96]}}";
    const std::string path = temp_path("good.safetensors");
    write_file(path, safetensors_bytes(header, data));
    const safetensors st(path);
    CHECK(st.names().size() == 5);
    CHECK(st.floats("w", {2, 3}) == a);
    const auto b = st.floats("b", {4});
    CHECK(b[0] == 1.0f);
    CHECK(b[1] == -3.0f);
    CHECK(std::isinf(b[2]));
    CHECK(b[3] > 0.0f);
    const auto h = st.floats("h", {2, 2});
    CHECK(h[0] == 1.0f);
    CHECK(h[1] == std::ldexp(1.0f, -24));
    CHECK(h[2] == 65504.0f);
    CHECK(h[3] == -std::numeric_limits<float>::infinity());
    CHECK(st.floats("d", {2})[0] == 0.1f);
    expect_load_error(
        [&] {
            st.floats("position_ids", {1, 5});
        },
        "tensor 'position_ids': dtype I64 is not a float tensor");
    expect_load_error(
        [&] {
            st.floats("w", {3, 2});
        },
        "good.safetensors: tensor 'w': expected shape [3, 2], given [2, 3]");
    expect_load_error([&] { st.floats("missing.weight", {1}); }, "missing tensor 'missing.weight'");
}

TEST_CASE("safetensors: every bad file is an error naming the file and the tensor") {
    const std::string w = "{\"w\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}}";
    const std::string eight(8, '\0');
    struct bad {
        std::string name, bytes, needle;
    };
    const std::vector<bad> cases = {
        {"short.safetensors", "abc", "truncated file (3 bytes"},
        {"header.safetensors", safetensors_bytes(w, eight).substr(0, 20), "truncated header"},
        {"json.safetensors", safetensors_bytes("{\"w\": {\"dtype\": \"F32\",,}}", eight), "bad JSON at byte"},
        {"dtype.safetensors",
         safetensors_bytes("{\"w\": {\"dtype\": \"F7\", \"shape\": [2], \"data_offsets\": [0, 8]}}", eight),
         "tensor 'w': unknown dtype 'F7'"},
        {"data.safetensors", safetensors_bytes(w, std::string(4, '\0')), "tensor 'w': truncated file (bytes [0, 8)"},
        {"offsets.safetensors",
         safetensors_bytes("{\"w\": {\"dtype\": \"F32\", \"shape\": [3], \"data_offsets\": [0, 8]}}", eight),
         "tensor 'w': 8 bytes for shape [3] of F32 (12 expected)"},
        {"fields.safetensors", safetensors_bytes("{\"w\": {\"dtype\": \"F32\"}}", eight),
         "tensor 'w': expected dtype, shape and data_offsets"},
    };
    for (const auto& c : cases) {
        INFO(c.name);
        const std::string path = temp_path(c.name);
        write_file(path, c.bytes);
        expect_load_error([&] { safetensors s(path); }, c.needle);
        expect_load_error([&] { safetensors s(path); }, c.name);
    }
    expect_load_error([&] { safetensors s(temp_path("nowhere/model.safetensors")); }, "cannot open the file");
}

TEST_CASE("json: config.json values, escapes, defaults, and syntax errors with their byte") {
    const json c = json::parse(R"({"hidden_size": 128, "layer_norm_eps": 1e-12, "name": "a\"b\u00e9\n",
                                    "tie": true, "list": [1, 2.5, null, {"x": []}]})",
                               "config.json");
    CHECK(c.at("hidden_size").integer() == 128);
    CHECK(c.at("layer_norm_eps").number() == 1e-12);
    CHECK(c.at("name").text() == "a\"b\xC3\xA9\n");
    CHECK(c.boolean_or("tie", false));
    CHECK(c.integer_or("num_heads", 2) == 2);
    CHECK(c.at("list").items.size() == 4);
    CHECK(c.at("list").items[2].type == json::kind::null);
    expect_load_error([&] { c.at("hidden_size").text(); }, "expected a string");
    expect_load_error([&] { c.at("layer_norm_eps").integer(); }, "expected an integer");
    expect_load_error([] { json::parse("{\"a\": 1,}", "cfg.json"); }, "cfg.json: bad JSON at byte 8");
    expect_load_error([] { json::parse("[1, 2", "cfg.json"); }, "expected ']'");
    expect_load_error([] { json::parse("{\"a\": 1} x", "cfg.json"); }, "trailing characters");
    expect_load_error([] { json::parse("\"\\uZZZZ\"", "cfg.json"); }, "bad \\u escape");
    // Non-finite numbers as Python's json (Infinity, NaN) and transformers 5 ({"__float__": ...}) write them.
    const json f =
        json::parse(R"({"limit": [0.0, Infinity, -Infinity, NaN, {"__float__": "Infinity"}]})", "config.json");
    const auto& lim = f.at("limit").items;
    CHECK(lim[1].real() == std::numeric_limits<double>::infinity());
    CHECK(lim[2].real() == -std::numeric_limits<double>::infinity());
    CHECK(std::isnan(lim[3].real()));
    CHECK(lim[4].real() == std::numeric_limits<double>::infinity());
    expect_load_error([] { json::parse(R"({"__float__": "big"})", "cfg.json").real(); }, "bad __float__ value 'big'");
}

TEST_CASE("npy: float32 round trip; int32 and int64 ids; bad files") {
    const std::vector<float> v = {1, 2, 3, 4, 5, 6.5f};
    const std::string path = temp_path("x.npy");
    write_npy(path, v, {2, 3});
    const npy_array a = read_npy(path);
    CHECK(a.shape == std::vector<std::int64_t>{2, 3});
    CHECK(a.floats() == v);
    write_npy(path, {7.0f}, {1});
    CHECK(read_npy(path).shape == std::vector<std::int64_t>{1});
    // int64 ids [2, 2], written as NumPy writes them.
    std::string h = "{'descr': '<i8', 'fortran_order': False, 'shape': (2, 2), }";
    while ((10 + h.size() + 1) % 64 != 0) h += ' ';
    h += '\n';
    const std::vector<std::int64_t> ids = {101, 2054, 102, 0};
    std::string file = std::string("\x93NUMPY\x01\x00", 8) + char(h.size() & 0xFF) + char(h.size() >> 8) + h + raw(ids);
    write_file(temp_path("ids.npy"), file);
    CHECK(read_npy(temp_path("ids.npy")).integers() == ids);
    expect_load_error([&] { read_npy(temp_path("ids.npy")).floats(); }, "expected float32");
    write_file(temp_path("short.npy"), file.substr(0, file.size() - 4));
    expect_load_error([&] { read_npy(temp_path("short.npy")); }, "short.npy: truncated data");
    write_file(temp_path("not.npy"), "hello world");
    expect_load_error([&] { read_npy(temp_path("not.npy")); }, "not a .npy file");
}

TEST_CASE("fp16 and bf16: every 16-bit pattern converts as the IEEE formats define") {
    for (std::uint32_t bits = 0; bits < 65536; ++bits) {
        const std::uint16_t b16 = std::uint16_t(bits);
        // bfloat16: the top half of a float.
        const std::uint32_t u = bits << 16;
        float expect;
        std::memcpy(&expect, &u, sizeof expect);
        const float got = bf16_to_float(b16);
        REQUIRE((std::memcmp(&got, &expect, 4) == 0 || (std::isnan(got) && std::isnan(expect))));
        // half: sign, 5-bit exponent (bias 15), 10-bit mantissa.
        const int e = int(bits >> 10 & 0x1F), m = int(bits & 0x3FF);
        const double sign = bits & 0x8000 ? -1.0 : 1.0;
        const double value =
            e == 0    ? sign * std::ldexp(double(m), -24)
            : e == 31 ? (m ? std::numeric_limits<double>::quiet_NaN() : sign * std::numeric_limits<double>::infinity())
                      : sign * std::ldexp(1.0 + double(m) / 1024.0, e - 15);
        const float h = fp16_to_float(b16);
        if (std::isnan(value)) REQUIRE(std::isnan(h));
        else REQUIRE((double(h) == value && std::signbit(h) == std::signbit(value)));
    }
}
