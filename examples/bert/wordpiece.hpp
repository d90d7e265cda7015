#pragma once
// BERT's WordPiece tokenizer, as transformers' BertTokenizer: the basic tokenizer (clean
// control characters, split on whitespace, lower-case, split off punctuation, space out CJK
// characters), then greedy longest-match-first word pieces from vocab.txt ("##" marks a
// piece inside a word; a word with no split, or over 100 characters, becomes [UNK]), framed
// by [CLS] ... [SEP]; special tokens in the text ([MASK]) stay whole. Lower-casing and accent stripping touch ASCII
// only: on ASCII text the ids equal BertTokenizer's.
#include <cstdint>
#include <cstring>
#include <fstream>
#include <string>
#include <unordered_map>
#include <vector>

#include "../common/json.hpp"

namespace seqmix_examples {

class wordpiece_tokenizer {
public:
    wordpiece_tokenizer(const std::string& vocab_path, bool lower_case) : lower_case_(lower_case) {
        std::ifstream in(vocab_path);
        if (!in) throw load_error(vocab_path + ": cannot open the file (--text needs the checkpoint's vocab.txt)");
        std::string line;
        for (std::int64_t id = 0; std::getline(in, line); ++id) {
            if (!line.empty() && line.back() == '\r') line.pop_back();
            ids_.emplace(line, id);
        }
        for (const char* t : {"[CLS]", "[SEP]", "[UNK]", "[PAD]"})
            if (!ids_.count(t)) throw load_error(vocab_path + ": no " + std::string(t) + " token");
    }

    std::int64_t id_of(const std::string& token) const { return ids_.at(token); }
    std::int64_t pad_id() const { return id_of("[PAD]"); }

    // [CLS] pieces of `text` [SEP]. The special tokens written in the text ("[MASK]") are
    // kept whole, as BertTokenizer keeps them.
    std::vector<std::int64_t> encode(const std::string& text) const {
        std::vector<std::int64_t> out{id_of("[CLS]")};
        std::size_t from = 0;
        while (from <= text.size()) {
            std::size_t at = std::string::npos, length = 0;
            for (const char* special : {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"}) {
                const std::size_t found = text.find(special, from);
                if (found < at && ids_.count(special)) at = found, length = std::strlen(special);
            }
            for (const auto& word :
                 basic_tokens(text.substr(from, at == std::string::npos ? std::string::npos : at - from)))
                word_pieces(word, out);
            if (at == std::string::npos) break;
            out.push_back(id_of(text.substr(at, length)));
            from = at + length;
        }
        out.push_back(id_of("[SEP]"));
        return out;
    }

    // The basic tokenizer's words: code points, split and lower-cased.
    std::vector<std::u32string> basic_tokens(const std::string& text) const {
        std::vector<std::u32string> words;
        std::u32string word;
        auto flush = [&] {
            if (!word.empty()) words.push_back(word);
            word.clear();
        };
        for (char32_t c : decode_utf8(text)) {
            if (c == 0 || c == 0xFFFD || (is_control(c) && !is_space(c))) continue;
            if (is_space(c)) {
                flush();
            } else if (is_punctuation(c) || is_cjk(c)) {
                flush();
                words.push_back(std::u32string(1, c));
            } else {
                word.push_back(lower_case_ && c >= 'A' && c <= 'Z' ? c + 32 : c);
            }
        }
        flush();
        return words;
    }

private:
    void word_pieces(const std::u32string& word, std::vector<std::int64_t>& out) const {
        if (word.size() > 100) {
            out.push_back(id_of("[UNK]"));
            return;
        }
        std::vector<std::int64_t> pieces;
        for (std::size_t start = 0; start < word.size();) {
            std::size_t end = word.size();
            std::int64_t found = -1;
            for (; end > start; --end) {
                const std::string piece = (start > 0 ? "##" : "") + encode_utf8(word.substr(start, end - start));
                auto it = ids_.find(piece);
                if (it != ids_.end()) {
                    found = it->second;
                    break;
                }
            }
            if (found < 0) {  // no piece matches here: the whole word is unknown
                out.push_back(id_of("[UNK]"));
                return;
            }
            pieces.push_back(found);
            start = end;
        }
        out.insert(out.end(), pieces.begin(), pieces.end());
    }

    static bool is_space(char32_t c) {
        return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == 0xA0 || c == 0x3000;
    }
    static bool is_control(char32_t c) { return c < 0x20 || (c >= 0x7F && c < 0xA0); }
    // ASCII punctuation (BERT counts every non-alphanumeric printable ASCII character) and
    // the General Punctuation block.
    static bool is_punctuation(char32_t c) {
        return (c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126) ||
               (c >= 0x2010 && c <= 0x205E) || (c >= 0x3001 && c <= 0x3003);
    }
    static bool is_cjk(char32_t c) {
        return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
               (c >= 0x2A700 && c <= 0x2CEAF) || (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
    }
    // Invalid bytes decode to U+FFFD (dropped by the cleaning step, as Python's "replace").
    static std::u32string decode_utf8(const std::string& s) {
        std::u32string out;
        for (std::size_t i = 0; i < s.size();) {
            const unsigned char b = static_cast<unsigned char>(s[i]);
            const int extra = b < 0x80 ? 0 : (b >> 5) == 6 ? 1 : (b >> 4) == 14 ? 2 : (b >> 3) == 30 ? 3 : -1;
            char32_t c = extra == 0 ? b : extra == 1 ? b & 0x1F : extra == 2 ? b & 0x0F : b & 0x07;
            bool ok = extra >= 0 && i + std::size_t(extra) < s.size() + (extra == 0 ? 1 : 0);
            for (int k = 1; ok && k <= extra; ++k) {
                const unsigned char n = static_cast<unsigned char>(s[i + std::size_t(k)]);
                ok = (n >> 6) == 2;
                c = c << 6 | (n & 0x3F);
            }
            out.push_back(ok ? c : char32_t(0xFFFD));
            i += ok ? std::size_t(extra) + 1 : 1;
        }
        return out;
    }
    static std::string encode_utf8(const std::u32string& s) {
        std::string out;
        for (char32_t c : s) {
            if (c < 0x80) {
                out += char(c);
            } else if (c < 0x800) {
                out += char(0xC0 | (c >> 6));
                out += char(0x80 | (c & 0x3F));
            } else if (c < 0x10000) {
                out += char(0xE0 | (c >> 12));
                out += char(0x80 | ((c >> 6) & 0x3F));
                out += char(0x80 | (c & 0x3F));
            } else {
                out += char(0xF0 | (c >> 18));
                out += char(0x80 | ((c >> 12) & 0x3F));
                out += char(0x80 | ((c >> 6) & 0x3F));
                out += char(0x80 | (c & 0x3F));
            }
        }
        return out;
    }

    bool lower_case_;
    std::unordered_map<std::string, std::int64_t> ids_;
};

}  // namespace seqmix_examples
