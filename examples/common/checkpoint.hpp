#pragma once
// A model's weights by their Hugging Face names: read from a checkpoint directory
// (config.json + model.safetensors, or a sharded model.safetensors.index.json), or drawn at
// random (seeded) when no checkpoint is given, with the same names and shapes either way.
// Blocks ask for each tensor with its expected shape; the reader reports a missing tensor or
// a wrong shape naming the file and the tensor, and never converts what no block asks for.
#include <cmath>
#include <cstdint>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "json.hpp"
#include "nn.hpp"
#include "safetensors.hpp"

namespace seqmix_examples {

// How a random model fills a tensor: value of element i (row-major).
using init = std::function<float(std::mt19937& gen, std::int64_t i)>;

inline init normal(float stddev) {
    return [stddev](std::mt19937& gen, std::int64_t) { return std::normal_distribution<float>(0.0f, stddev)(gen); };
}
inline init uniform(float lo, float hi) {
    return [lo, hi](std::mt19937& gen, std::int64_t) { return std::uniform_real_distribution<float>(lo, hi)(gen); };
}
inline init constant(float v) {
    return [v](std::mt19937&, std::int64_t) { return v; };
}
// Near a constant (norm weights, D): random models keep every weight visible in the output.
inline init around(float v, float spread) {
    return [v, spread](std::mt19937& gen, std::int64_t) {
        return v + std::uniform_real_distribution<float>(-spread, spread)(gen);
    };
}

inline std::string read_text_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw load_error(path + ": cannot open the file");
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

inline bool file_exists(const std::string& path) { return std::ifstream(path).good(); }

class weights {
public:
    // Seeded random weights of a model configured by `config` (config.json's text; "{}":
    // every field takes the block's default).
    explicit weights(std::uint32_t seed, const std::string& config = "{}")
        : gen_(seed), config_(json::parse(config, "config")) {}

    // A Hugging Face checkpoint directory.
    static weights from_directory(const std::string& dir) {
        weights w(0);
        w.dir_ = dir;
        w.config_ = json::parse(read_text_file(dir + "/config.json"), dir + "/config.json");
        const std::string index = dir + "/model.safetensors.index.json";
        if (file_exists(index)) {  // sharded: {"weight_map": {tensor: file}}
            const json map = json::parse(read_text_file(index), index);
            std::map<std::string, std::size_t> opened;
            for (const auto& [name, file] : map.at("weight_map").fields) {
                auto it = opened.find(file.text());
                if (it == opened.end()) {
                    w.files_.push_back(std::make_shared<safetensors>(dir + "/" + file.text()));
                    it = opened.emplace(file.text(), w.files_.size() - 1).first;
                }
                w.owner_[name] = it->second;
            }
        } else {
            w.files_.push_back(std::make_shared<safetensors>(dir + "/model.safetensors"));
            for (const auto& name : w.files_[0]->names()) w.owner_[name] = 0;
        }
        return w;
    }

    bool from_checkpoint() const { return !files_.empty(); }
    const std::string& directory() const { return dir_; }
    const json& config() const { return config_; }
    // True when the checkpoint holds `name` (prefix detection: "backbone.", "bert.").
    bool has(const std::string& name) const { return owner_.count(name) != 0; }

    std::vector<float> values(const std::string& name, const std::vector<std::int64_t>& shape, const init& fill) {
        if (from_checkpoint()) {
            auto it = owner_.find(name);
            if (it == owner_.end()) throw load_error(files_[0]->path() + ": missing tensor '" + name + "'");
            return files_[it->second]->floats(name, shape);
        }
        std::int64_t n = 1;
        for (auto x : shape) n *= x;
        std::vector<float> v(static_cast<std::size_t>(n));
        for (std::int64_t i = 0; i < n; ++i) v[std::size_t(i)] = fill(gen_, i);
        generated_[name] = {shape, v};
        return v;
    }
    // A [rows, cols] tensor (nn.Linear weights are [out, in]); Conv1d weights [C, 1, W] are
    // read as [C, W] by listing their real shape in `shape`.
    matrix matrix_of(const std::string& name, std::int64_t rows, std::int64_t cols, const init& fill,
                     std::vector<std::int64_t> shape = {}) {
        if (shape.empty()) shape = {rows, cols};
        const auto v = values(name, shape, fill);
        return Eigen::Map<const matrix>(v.data(), rows, cols);
    }
    row_vector vector_of(const std::string& name, std::int64_t n, const init& fill) {
        const auto v = values(name, {n}, fill);
        return Eigen::Map<const row_vector>(v.data(), n);
    }
    linear linear_of(const std::string& name, std::int64_t out, std::int64_t in, bool bias, float stddev = 0.02f) {
        linear l;
        l.weight = matrix_of(name + ".weight", out, in, normal(stddev));
        if (bias) l.bias = vector_of(name + ".bias", out, normal(stddev));
        return l;
    }

    // The random tensors drawn so far by name (shape, values): a random model can be written
    // out as a checkpoint.
    struct drawn {
        std::vector<std::int64_t> shape;
        std::vector<float> values;
    };
    const std::map<std::string, drawn>& generated() const { return generated_; }

private:
    std::map<std::string, drawn> generated_;
    std::mt19937 gen_;
    json config_;
    std::string dir_;
    std::vector<std::shared_ptr<safetensors>> files_;
    std::map<std::string, std::size_t> owner_;
};

}  // namespace seqmix_examples
