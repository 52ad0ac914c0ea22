#include "expr/value.h"

#include <charconv>
#include <cmath>
#include <cstring>

#include "expr/json.h"
#include "expr/time_util.h"

namespace streamrec::expr {

const char* KindName(Kind kind) {
  switch (kind) {
    case Kind::kNull:
      return "null";
    case Kind::kBool:
      return "bool";
    case Kind::kInt:
      return "int";
    case Kind::kDouble:
      return "double";
    case Kind::kString:
      return "string";
    case Kind::kList:
      return "list";
    case Kind::kMap:
      return "map";
    case Kind::kTime:
      return "time";
  }
  return "?";
}

const Value* Value::Find(std::string_view key) const {
  for (const MapEntry& e : as_map()) {
    if (e.key == key) return &e.value;
  }
  return nullptr;
}

void Value::SetString(std::string_view s) {
  if (s.size() <= kMaxInline) {
    SetInline(s);
  } else {
    SetShared(&s_, Rep::kString, std::make_shared<std::string>(s));
  }
}

void Value::AssignString(std::string_view s) {
  if (is_string() && as_string() == s) return;  // e.g. a tracker field that every event repeats
  if (s.size() <= kMaxInline) {
    if (!IsShared()) {
      SetInline(s);  // `s` may be this value's own text: SetInline copies through a local
      return;
    }
  } else if (rep_ == Rep::kString) {
    if (std::string* own = Unique(s_)) {
      own->assign(s);
      return;
    }
  }
  *this = Value(s);
}

void Value::CopyShared(const Value& other) {
  switch (other.rep_) {
    case Rep::kString:
      new (&s_) std::shared_ptr<const std::string>(other.s_);
      break;
    case Rep::kList:
      new (&l_) std::shared_ptr<const List>(other.l_);
      break;
    case Rep::kMap:
      new (&m_) std::shared_ptr<const Map>(other.m_);
      break;
    default:
      break;  // not shared: CopyFrom handled it
  }
}

void Value::MoveShared(Value& other) noexcept {
  switch (other.rep_) {
    case Rep::kString:
      new (&s_) std::shared_ptr<const std::string>(std::move(other.s_));
      break;
    case Rep::kList:
      new (&l_) std::shared_ptr<const List>(std::move(other.l_));
      break;
    case Rep::kMap:
      new (&m_) std::shared_ptr<const Map>(std::move(other.m_));
      break;
    default:
      break;  // not shared: MoveFrom handled it
  }
  rep_ = other.rep_;
  other.rep_ = Rep::kNull;  // a moved-from shared_ptr holds nothing: no destructor to run
}

void Value::DestroyShared() noexcept {
  switch (rep_) {
    case Rep::kString:
      s_.~shared_ptr();
      break;
    case Rep::kList:
      l_.~shared_ptr();
      break;
    case Rep::kMap:
      m_.~shared_ptr();
      break;
    default:
      break;  // not shared: Destroy handled it
  }
  rep_ = Rep::kNull;
}

bool operator==(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    if (a.is_int() && b.is_int()) return a.as_int() == b.as_int();
    return a.as_number() == b.as_number();
  }
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case Kind::kNull:
      return true;
    case Kind::kBool:
      return a.as_bool() == b.as_bool();
    case Kind::kString:
      return a.as_string() == b.as_string();
    case Kind::kTime:
      return a.as_time() == b.as_time();
    case Kind::kList:
      return a.as_list() == b.as_list();
    case Kind::kMap: {
      const Map& x = a.as_map();
      const Map& y = b.as_map();
      if (x.size() != y.size()) return false;
      // Maps are equal as sets of entries; order is presentation only.
      for (const MapEntry& e : x) {
        const Value* other = b.Find(e.key);
        if (!other || !(*other == e.value)) return false;
      }
      return true;
    }
    default:
      return false;
  }
}

std::string ToText(const Value& value) {
  switch (value.kind()) {
    case Kind::kString:
      return std::string(value.as_string());
    case Kind::kTime:
      return FormatIsoTime(value.as_time().ms);
    default:
      return ToJson(value);
  }
}

Type Type::ListOf(Type element) {
  Type t(Tag::kList);
  t.detail_ = std::make_shared<const Detail>(Detail{{}, {std::move(element)}});
  return t;
}

Type Type::MapOf(Type value) {
  Type t(Tag::kMap);
  t.detail_ = std::make_shared<const Detail>(Detail{{}, {std::move(value)}});
  return t;
}

Type Type::Record(std::vector<std::pair<std::string, Type>> fields) {
  Type t(Tag::kMap);
  t.detail_ = std::make_shared<const Detail>(Detail{std::move(fields), {}});
  return t;
}

Type Type::element() const {
  if (detail_ && !detail_->element.empty()) return detail_->element[0];
  return Any();
}

const std::vector<std::pair<std::string, Type>>* Type::fields() const {
  if (detail_ && detail_->element.empty() && tag_ == Tag::kMap) return &detail_->fields;
  return nullptr;
}

const Type* Type::Field(std::string_view name) const {
  static const Type kAny;
  if (const auto* f = fields()) {
    for (const auto& [n, t] : *f) {
      if (n == name) return &t;
    }
    return nullptr;
  }
  if (detail_ && !detail_->element.empty()) return &detail_->element[0];
  return &kAny;
}

std::string Type::ToString() const {
  switch (tag_) {
    case Tag::kAny:
      return "any";
    case Tag::kNull:
      return "null";
    case Tag::kBool:
      return "bool";
    case Tag::kInt:
      return "int";
    case Tag::kDouble:
      return "double";
    case Tag::kString:
      return "string";
    case Tag::kTime:
      return "time";
    case Tag::kList:
      return "list<" + element().ToString() + ">";
    case Tag::kMap: {
      if (const auto* f = fields()) {
        std::string s = "{";
        for (size_t i = 0; i < f->size(); ++i) {
          if (i) s += ", ";
          s += (*f)[i].first + ": " + (*f)[i].second.ToString();
        }
        return s + "}";
      }
      return "map<" + element().ToString() + ">";
    }
  }
  return "?";
}

bool operator==(const Type& a, const Type& b) {
  if (a.tag_ != b.tag_) return false;
  if (a.tag_ == Type::Tag::kList) return a.element() == b.element();
  if (a.tag_ == Type::Tag::kMap) {
    const auto* fa = a.fields();
    const auto* fb = b.fields();
    if (!fa || !fb) return !fa && !fb && a.element() == b.element();
    return *fa == *fb;
  }
  return true;
}

Type TypeOf(const Value& value) {
  switch (value.kind()) {
    case Kind::kNull:
      return Type::Null();
    case Kind::kBool:
      return Type::Bool();
    case Kind::kInt:
      return Type::Int();
    case Kind::kDouble:
      return Type::Double();
    case Kind::kString:
      return Type::String();
    case Kind::kTime:
      return Type::Time();
    case Kind::kList: {
      const List& l = value.as_list();
      if (l.empty()) return Type::ListOf(Type::Any());
      Type first = TypeOf(l[0]);
      for (const Value& v : l) {
        if (!(TypeOf(v) == first)) return Type::ListOf(Type::Any());
      }
      return Type::ListOf(first);
    }
    case Kind::kMap:
      return Type::MapOf(Type::Any());
  }
  return Type::Any();
}

}  // namespace streamrec::expr
