// Makes a tiktoken split pattern mean under PCRE2 what it means under Rust's
// regex crate (which tiktoken uses), so ember's pieces are tiktoken's for
// every code point, not just for common text.
//
// Two differences are bridged, by rewriting the pattern before compiling:
//  - Unicode version: Debian's PCRE2 10.42 has Unicode 14 tables, tiktoken's
//    regex Unicode 16. Each \p{L}, \p{Lu}, \p{Ll}, \p{Lt}, \p{Lm}, \p{Lo},
//    \p{M}, \p{N} gets the code points assigned to it since then, as ranges
//    (a table measured against tiktoken by tests/conformance/tiktoken_unicode_table.py).
//    With a newer PCRE2 the extra ranges are harmless (already members).
//  - \s: Rust's is exactly White_Space; PCRE2's also takes U+180E, so \s
//    (and \S outside classes) become the explicit White_Space set.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ember {

std::string adapt_pattern_for_pcre2(const std::string& pattern);

// The code points each Unicode class ("L", "Lu", ..., "M", "N") has for
// tiktoken but not for this PCRE2, as inclusive ranges: what the rewriting
// adds to \p{X}.
const std::map<std::string, std::vector<std::pair<unsigned, unsigned>>>& newer_class_members();

// Whether `text` holds a code point on which the rewritten pattern can differ
// from the pattern as given (one in the table, or U+180E). The rewritten form
// runs at about half the speed, so the Pretokenizer uses it only for such
// texts. Invalid UTF-8 is skipped (no pattern item matches it either way).
bool has_newer_code_points(std::string_view text);

}  // namespace ember
