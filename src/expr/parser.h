// Expression syntax tree and parser (private to src/expr).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "expr/value.h"

namespace streamrec::expr {

struct Ast {
  enum class Kind {
    kLiteral,  // literal
    kVar,      // #name
    kName,     // bare identifier: a lambda parameter
    kList,     // [kids...]
    kMap,      // {keys[i]: kids[i]}
    kField,    // kids[0].name, null_safe for ?.
    kIndex,    // kids[0][kids[1]], null_safe for ?.[
    kCall,     // name(kids...); a method call x.f(a) is f(x, a)
    kLambda,   // name -> kids[0]
    kUnary,    // op kids[0]: "!" or "-"
    kBinary,   // kids[0] op kids[1]
    kCond,     // kids[0] ? kids[1] : kids[2]
    kElvis,    // kids[0] ?: kids[1]
  };
  Kind kind;
  int pos = 0;  //!< byte offset of the construct's operator or first token
  Value literal;
  std::string name;
  std::string op;
  bool null_safe = false;
  std::vector<std::string> keys;
  std::vector<std::unique_ptr<Ast>> kids;
};

//! "column 14" for one-line sources, "line 2, column 3" otherwise (1-based).
std::string Where(std::string_view source, int pos);

//! Errors are "column N: message".
common::Result<std::unique_ptr<Ast>> Parse(std::string_view source);

}  // namespace streamrec::expr
