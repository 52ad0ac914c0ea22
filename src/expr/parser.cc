#include "expr/parser.h"

#include <charconv>
#include <cstdlib>

namespace streamrec::expr {
namespace {

using common::Result;
using common::Status;

// Nesting beyond this is rejected rather than risking the stack on hostile input.
constexpr int kMaxDepth = 200;

enum class Tok { kEnd, kIdent, kVar, kInt, kDouble, kString, kPunct };

struct Token {
  Tok kind;
  int pos;
  std::string text;  // identifier, punctuation or decoded string
  int64_t i = 0;
  double d = 0;
};

bool IsIdentStart(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool IsIdentChar(char c) { return IsIdentStart(c) || (c >= '0' && c <= '9'); }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }

void AppendUtf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

class Parser {
 public:
  explicit Parser(std::string_view src) : src_(src) {}

  Result<std::unique_ptr<Ast>> Run() {
    if (Status s = Lex(); !s.ok()) return s;
    auto root = ParseExpr();
    if (!error_.ok()) return error_;
    if (Peek().kind != Tok::kEnd) {
      Fail(Peek().pos, "unexpected " + Describe(Peek()));
      return error_;
    }
    return root;
  }

 private:
  Status Error(int pos, const std::string& msg) {
    return Status::Invalid("expression_error", Where(src_, pos) + ": " + msg);
  }
  void Fail(int pos, const std::string& msg) {
    if (error_.ok()) error_ = Error(pos, msg);
  }
  static std::string Describe(const Token& t) {
    switch (t.kind) {
      case Tok::kEnd:
        return "end of expression";
      case Tok::kString:
        return "string";
      case Tok::kInt:
      case Tok::kDouble:
        return "number";
      default:
        return "'" + t.text + "'";
    }
  }

  Status Lex() {
    static constexpr std::string_view kPuncts[] = {
        "?.[", "?.", "?:", "->", "==", "!=", "<=", ">=", "&&", "||", "(", ")", "[", "]", "{",
        "}",   ",",  ".",  "?",  ":",  "+",  "-",  "*",  "/",  "%",  "<", ">", "!", "="};
    size_t i = 0;
    while (i < src_.size()) {
      char c = src_[i];
      int pos = static_cast<int>(i);
      if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
        ++i;
      } else if (IsIdentStart(c) ||
                 (c == '#' && i + 1 < src_.size() && IsIdentStart(src_[i + 1]))) {
        size_t start = c == '#' ? i + 1 : i;
        i = start;
        while (i < src_.size() && IsIdentChar(src_[i])) ++i;
        tokens_.push_back(
            {c == '#' ? Tok::kVar : Tok::kIdent, pos, std::string(src_.substr(start, i - start))});
      } else if (c == '#') {
        return Error(pos, "'#' must be followed by a variable name");
      } else if (IsDigit(c)) {
        size_t start = i;
        while (i < src_.size() && IsDigit(src_[i])) ++i;
        bool is_double = false;
        if (i + 1 < src_.size() && src_[i] == '.' && IsDigit(src_[i + 1])) {
          is_double = true;
          ++i;
          while (i < src_.size() && IsDigit(src_[i])) ++i;
        }
        if (i < src_.size() && (src_[i] == 'e' || src_[i] == 'E')) {
          size_t j = i + 1;
          if (j < src_.size() && (src_[j] == '+' || src_[j] == '-')) ++j;
          if (j < src_.size() && IsDigit(src_[j])) {
            is_double = true;
            i = j;
            while (i < src_.size() && IsDigit(src_[i])) ++i;
          }
        }
        if (i < src_.size() && IsIdentChar(src_[i])) {
          return Error(static_cast<int>(i), "invalid number");
        }
        std::string text(src_.substr(start, i - start));
        Token t{is_double ? Tok::kDouble : Tok::kInt, pos, text};
        if (is_double) {
          t.d = std::strtod(text.c_str(), nullptr);
        } else {
          auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), t.i);
          if (ec != std::errc()) return Error(pos, "integer literal out of range: " + text);
        }
        tokens_.push_back(std::move(t));
      } else if (c == '\'' || c == '"') {
        std::string out;
        ++i;
        bool closed = false;
        while (i < src_.size()) {
          char ch = src_[i];
          if (ch == c) {
            closed = true;
            ++i;
            break;
          }
          if (ch != '\\') {
            out += ch;
            ++i;
            continue;
          }
          if (i + 1 >= src_.size()) break;
          char e = src_[i + 1];
          int epos = static_cast<int>(i);
          i += 2;
          switch (e) {
            case 'n':
              out += '\n';
              break;
            case 't':
              out += '\t';
              break;
            case 'r':
              out += '\r';
              break;
            case '0':
              out += '\0';
              break;
            case '\\':
              out += '\\';
              break;
            case '\'':
              out += '\'';
              break;
            case '"':
              out += '"';
              break;
            case '/':
              out += '/';
              break;
            case 'u': {
              uint32_t cp = 0;
              if (i + 4 > src_.size()) return Error(epos, "invalid \\u escape");
              auto [p, ec] = std::from_chars(src_.data() + i, src_.data() + i + 4, cp, 16);
              if (ec != std::errc() || p != src_.data() + i + 4) {
                return Error(epos, "invalid \\u escape");
              }
              i += 4;
              AppendUtf8(out, cp);
              break;
            }
            default:
              return Error(epos, std::string("unknown escape '\\") + e + "'");
          }
        }
        if (!closed) return Error(pos, "unterminated string");
        tokens_.push_back({Tok::kString, pos, std::move(out)});
      } else {
        bool found = false;
        for (std::string_view p : kPuncts) {
          if (src_.substr(i, p.size()) == p) {
            if (p == "=") return Error(pos, "'=' is not an operator (did you mean '=='?)");
            tokens_.push_back({Tok::kPunct, pos, std::string(p)});
            i += p.size();
            found = true;
            break;
          }
        }
        if (!found) return Error(pos, std::string("unexpected character '") + c + "'");
      }
    }
    tokens_.push_back({Tok::kEnd, static_cast<int>(src_.size()), ""});
    return Status::Ok();
  }

  const Token& Peek(size_t ahead = 0) const {
    return tokens_[std::min(next_ + ahead, tokens_.size() - 1)];
  }
  bool IsPunct(std::string_view p, size_t ahead = 0) const {
    const Token& t = Peek(ahead);
    return t.kind == Tok::kPunct && t.text == p;
  }
  bool IsKeyword(std::string_view k) const {
    return Peek().kind == Tok::kIdent && Peek().text == k;
  }
  bool Accept(std::string_view p) {
    if (!IsPunct(p)) return false;
    ++next_;
    return true;
  }
  bool Expect(std::string_view p, std::string_view what) {
    if (Accept(p)) return true;
    Fail(Peek().pos, "expected " + std::string(what) + ", got " + Describe(Peek()));
    return false;
  }

  static std::unique_ptr<Ast> Make(Ast::Kind kind, int pos) {
    auto a = std::make_unique<Ast>();
    a->kind = kind;
    a->pos = pos;
    return a;
  }
  std::unique_ptr<Ast> Binary(std::string op, int pos, std::unique_ptr<Ast> l,
                              std::unique_ptr<Ast> r) {
    auto a = Make(Ast::Kind::kBinary, pos);
    a->op = std::move(op);
    a->kids.push_back(std::move(l));
    a->kids.push_back(std::move(r));
    return a;
  }

  std::unique_ptr<Ast> ParseExpr() {
    if (++depth_ > kMaxDepth) {
      Fail(Peek().pos, "expression nested too deeply");
      --depth_;
      return Make(Ast::Kind::kLiteral, Peek().pos);
    }
    auto e = ParseTernary();
    --depth_;
    return e;
  }

  // c ? a : b and a ?: b, right-associative, lowest precedence.
  std::unique_ptr<Ast> ParseTernary() {
    auto cond = ParseOr();
    if (!error_.ok()) return cond;
    int pos = Peek().pos;
    if (Accept("?:")) {
      auto a = Make(Ast::Kind::kElvis, pos);
      a->kids.push_back(std::move(cond));
      a->kids.push_back(ParseExpr());
      return a;
    }
    if (Accept("?")) {
      auto a = Make(Ast::Kind::kCond, pos);
      a->kids.push_back(std::move(cond));
      a->kids.push_back(ParseExpr());
      if (!Expect(":", "':' of the conditional")) return a;
      a->kids.push_back(ParseExpr());
      return a;
    }
    return cond;
  }

  std::unique_ptr<Ast> ParseOr() {
    auto l = ParseAnd();
    while (error_.ok() && (IsPunct("||") || IsKeyword("or"))) {
      int pos = Peek().pos;
      ++next_;
      l = Binary("||", pos, std::move(l), ParseAnd());
    }
    return l;
  }

  std::unique_ptr<Ast> ParseAnd() {
    auto l = ParseEquality();
    while (error_.ok() && (IsPunct("&&") || IsKeyword("and"))) {
      int pos = Peek().pos;
      ++next_;
      l = Binary("&&", pos, std::move(l), ParseEquality());
    }
    return l;
  }

  std::unique_ptr<Ast> ParseEquality() {
    auto l = ParseRelational();
    while (error_.ok() && (IsPunct("==") || IsPunct("!="))) {
      const Token& t = tokens_[next_++];
      l = Binary(t.text, t.pos, std::move(l), ParseRelational());
    }
    return l;
  }

  std::unique_ptr<Ast> ParseRelational() {
    auto l = ParseAdditive();
    while (error_.ok() && (IsPunct("<") || IsPunct("<=") || IsPunct(">") || IsPunct(">="))) {
      const Token& t = tokens_[next_++];
      l = Binary(t.text, t.pos, std::move(l), ParseAdditive());
    }
    return l;
  }

  std::unique_ptr<Ast> ParseAdditive() {
    auto l = ParseMultiplicative();
    while (error_.ok() && (IsPunct("+") || IsPunct("-"))) {
      const Token& t = tokens_[next_++];
      l = Binary(t.text, t.pos, std::move(l), ParseMultiplicative());
    }
    return l;
  }

  std::unique_ptr<Ast> ParseMultiplicative() {
    auto l = ParseUnary();
    while (error_.ok() && (IsPunct("*") || IsPunct("/") || IsPunct("%"))) {
      const Token& t = tokens_[next_++];
      l = Binary(t.text, t.pos, std::move(l), ParseUnary());
    }
    return l;
  }

  std::unique_ptr<Ast> ParseUnary() {
    if (IsPunct("!") || IsPunct("-") || IsKeyword("not")) {
      const Token& t = tokens_[next_++];
      if (++depth_ > kMaxDepth) {
        Fail(t.pos, "expression nested too deeply");
        return Make(Ast::Kind::kLiteral, t.pos);
      }
      auto a = Make(Ast::Kind::kUnary, t.pos);
      a->op = t.text == "-" ? "-" : "!";
      a->kids.push_back(ParseUnary());
      --depth_;
      return a;
    }
    return ParsePostfix();
  }

  std::unique_ptr<Ast> ParsePostfix() {
    auto e = ParsePrimary();
    while (error_.ok()) {
      int pos = Peek().pos;
      if (IsPunct(".") || IsPunct("?.")) {
        bool null_safe = Peek().text == "?.";
        ++next_;
        if (Peek().kind != Tok::kIdent) {
          Fail(Peek().pos, "expected a field or function name after '.', got " + Describe(Peek()));
          return e;
        }
        const Token& name = tokens_[next_++];
        if (IsPunct("(")) {
          auto call = Make(Ast::Kind::kCall, name.pos);
          call->name = name.text;
          call->null_safe = null_safe;
          call->kids.push_back(std::move(e));
          ParseArgs(*call);
          e = std::move(call);
        } else {
          auto f = Make(Ast::Kind::kField, name.pos);
          f->name = name.text;
          f->null_safe = null_safe;
          f->kids.push_back(std::move(e));
          e = std::move(f);
        }
      } else if (IsPunct("[") || IsPunct("?.[")) {
        bool null_safe = Peek().text == "?.[";
        ++next_;
        auto a = Make(Ast::Kind::kIndex, pos);
        a->null_safe = null_safe;
        a->kids.push_back(std::move(e));
        a->kids.push_back(ParseExpr());
        Expect("]", "']'");
        e = std::move(a);
      } else {
        break;
      }
    }
    return e;
  }

  void ParseArgs(Ast& call) {
    ++next_;  // (
    if (Accept(")")) return;
    while (error_.ok()) {
      if (Peek().kind == Tok::kIdent && IsPunct("->", 1)) {
        const Token& param = tokens_[next_];
        next_ += 2;
        auto lambda = Make(Ast::Kind::kLambda, param.pos);
        lambda->name = param.text;
        lambda->kids.push_back(ParseExpr());
        call.kids.push_back(std::move(lambda));
      } else {
        call.kids.push_back(ParseExpr());
      }
      if (Accept(")")) return;
      if (!Expect(",", "',' or ')'")) return;
    }
  }

  std::unique_ptr<Ast> ParsePrimary() {
    const Token& t = Peek();
    int pos = t.pos;
    switch (t.kind) {
      case Tok::kInt:
      case Tok::kDouble:
      case Tok::kString: {
        auto a = Make(Ast::Kind::kLiteral, pos);
        if (t.kind == Tok::kInt) a->literal = Value(t.i);
        if (t.kind == Tok::kDouble) a->literal = Value(t.d);
        if (t.kind == Tok::kString) a->literal = Value(t.text);
        ++next_;
        return a;
      }
      case Tok::kVar: {
        auto a = Make(Ast::Kind::kVar, pos);
        a->name = t.text;
        ++next_;
        return a;
      }
      case Tok::kIdent: {
        ++next_;
        auto a = Make(Ast::Kind::kLiteral, pos);
        if (t.text == "true") {
          a->literal = Value(true);
        } else if (t.text == "false") {
          a->literal = Value(false);
        } else if (t.text == "null") {
        } else if (IsPunct("(")) {
          a->kind = Ast::Kind::kCall;
          a->name = t.text;
          ParseArgs(*a);
        } else if (IsPunct("->")) {
          Fail(pos, "a lambda 'x -> ...' may only be a function argument");
        } else {
          a->kind = Ast::Kind::kName;
          a->name = t.text;
        }
        return a;
      }
      case Tok::kPunct:
        if (t.text == "(") {
          ++next_;
          auto e = ParseExpr();
          Expect(")", "')'");
          return e;
        }
        if (t.text == "[") {
          ++next_;
          auto a = Make(Ast::Kind::kList, pos);
          if (Accept("]")) return a;
          while (error_.ok()) {
            a->kids.push_back(ParseExpr());
            if (Accept("]")) break;
            if (!Expect(",", "',' or ']'")) break;
          }
          return a;
        }
        if (t.text == "{") {
          ++next_;
          auto a = Make(Ast::Kind::kMap, pos);
          if (Accept("}")) return a;
          while (error_.ok()) {
            const Token& key = Peek();
            if (key.kind != Tok::kIdent && key.kind != Tok::kString) {
              Fail(key.pos, "expected a map key (name or string), got " + Describe(key));
              break;
            }
            for (const std::string& k : a->keys) {
              if (k == key.text) Fail(key.pos, "duplicate map key '" + k + "'");
            }
            a->keys.push_back(key.text);
            ++next_;
            if (!Expect(":", "':' after the map key")) break;
            a->kids.push_back(ParseExpr());
            if (Accept("}")) break;
            if (!Expect(",", "',' or '}'")) break;
          }
          return a;
        }
        break;
      default:
        break;
    }
    Fail(pos, "expected a value, got " + Describe(t));
    return Make(Ast::Kind::kLiteral, pos);
  }

  std::string_view src_;
  std::vector<Token> tokens_;
  size_t next_ = 0;
  int depth_ = 0;
  Status error_;
};

}  // namespace

std::string Where(std::string_view source, int pos) {
  int line = 1, col = 1;
  for (int i = 0; i < pos && i < static_cast<int>(source.size()); ++i) {
    if (source[i] == '\n') {
      ++line;
      col = 1;
    } else {
      ++col;
    }
  }
  if (source.find('\n') == std::string_view::npos) return "column " + std::to_string(col);
  return "line " + std::to_string(line) + ", column " + std::to_string(col);
}

Result<std::unique_ptr<Ast>> Parse(std::string_view source) { return Parser(source).Run(); }

}  // namespace streamrec::expr
